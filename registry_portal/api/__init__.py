"""The REST API under /api/v1/: authentication, the error format, pagination, permission
classes and the OpenAPI schema. The endpoints live in each app's ``api/`` package."""
