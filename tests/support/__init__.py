"""Test support: tiny OCI images built in Python, live servers, real-client helpers."""
