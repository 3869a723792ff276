"""Side-by-side benchmarks of the portal against a reference registry (make bench)."""
