"""Cost-savings reports for finance: the cost model, the baselines, and HTML/CSV/PDF output,
from a simulation's timeline or from a live cluster's Prometheus."""
