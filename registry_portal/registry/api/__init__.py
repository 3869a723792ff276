"""REST API of the registry: repositories, tags and the tag history."""
