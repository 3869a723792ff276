"""End-to-end tests: real clients (skopeo, podman, oras) against live servers."""
