"""REST API of scanning: scan reports, their components and findings, the retry of a failed
scan, and the OSV vulnerability database (snapshots, sync, zip upload)."""
