"""The HTTP data plane: routing, request counting, cold-start holding, and the proxy."""
