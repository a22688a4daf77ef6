"""Everything that talks to Kubernetes. Not built yet: see the controllers issue."""
