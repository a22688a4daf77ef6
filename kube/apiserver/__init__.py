"""An aiohttp server speaking the Kubernetes REST API over the in-memory cluster.

No kube-apiserver can run here, so this one does: the real `kubectl` and
`kubernetes_asyncio` talk to it (DESIGN: Real components). Start it with

    running = await serve(MemoryCluster(now=time.time), port=0)
    write_kubeconfig("kubeconfig", running.url)
    ...
    await running.close()

What it serves, module by module: discovery and OpenAPI v3 (discovery.py), resources and
their alias groups keda.sh/karpenter.sh (resources.py), CRUD, list and patch (app.py),
watch (watch.py), /scale, /status, eviction and binding (subresources.py, with the budget
check of kube/disruption_budgets.py), Tables for `kubectl get` (tables.py), field selectors
(fields.py), strategic merge patch (strategic.py), Status errors (status.py) and fault
switches for tests (faults.py).
"""

from kube.apiserver.app import ApiServer
from kube.apiserver.faults import HttpFaults
from kube.apiserver.serve import RunningServer, ThreadedServer, serve, write_kubeconfig

__all__ = [
    "ApiServer",
    "HttpFaults",
    "RunningServer",
    "ThreadedServer",
    "serve",
    "write_kubeconfig",
]
