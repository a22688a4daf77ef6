import pytest

from provisioner.scheduling.model import HOSTNAME, ZONE, Operator, TaintEffect
from provisioner.scheduling.pods import pod_from_manifest

GIB = 2**30


def manifest(**spec: object) -> dict:
    base = {
        "containers": [{"name": "c", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]
    }
    return {"metadata": {"name": "p", "namespace": "ns"}, "spec": {**base, **spec}}


def test_requests_sum_containers_and_add_overhead() -> None:
    obj = manifest(
        containers=[
            {"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
            {
                "name": "b",
                "resources": {"limits": {"cpu": "1", "memory": "512Mi", "nvidia.com/gpu": 1}},
            },
        ],
        overhead={"cpu": "100m"},
    )
    pod = pod_from_manifest(obj)
    assert pod.requests.cpu == 1600
    assert pod.requests.memory == GIB + 512 * 2**20
    assert pod.requests.gpu == 1 and pod.requests.pods == 1
    assert pod.key == "ns/p"


def test_init_containers_take_the_max_and_sidecars_add() -> None:
    obj = manifest(
        initContainers=[
            {"name": "big", "resources": {"requests": {"cpu": "2"}}},
            {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "250m"}}},
        ]
    )
    pod = pod_from_manifest(obj)
    assert pod.requests.cpu == 2000  # max(2, 0.5 + 0.25)
    obj["spec"]["initContainers"][0]["resources"]["requests"]["cpu"] = "100m"
    assert pod_from_manifest(obj).requests.cpu == 750  # containers plus the sidecar


def test_constraints_are_parsed() -> None:
    sel = {"matchLabels": {"app": "web"}}
    obj = manifest(
        nodeSelector={"kubernetes.io/arch": "arm64"},
        tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
        topologySpreadConstraints=[
            {
                "maxSkew": 1,
                "topologyKey": ZONE,
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": sel,
            }
        ],
        affinity={
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "karpenter.k8s.aws/instance-cpu",
                                    "operator": "Gt",
                                    "values": ["4"],
                                }
                            ]
                        },
                        {"matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]},
                    ]
                }
            },
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": HOSTNAME, "labelSelector": sel}
                ]
            },
        },
        priority=100,
    )
    obj["metadata"]["annotations"] = {"karpenter.sh/do-not-disrupt": "true"}
    obj["metadata"]["ownerReferences"] = [
        {"kind": "ReplicaSet", "name": "web-1", "controller": True}
    ]
    pod = pod_from_manifest(obj)
    assert pod.node_selector == {"kubernetes.io/arch": "arm64"}
    assert pod.tolerations[0].effect == TaintEffect.NO_SCHEDULE
    assert pod.topology_spread[0].selector.match_labels == (("app", "web"),)
    assert len(pod.node_affinity) == 2 and pod.node_affinity[0][0].operator == Operator.GT
    assert pod.anti_affinity[0].topology_key == HOSTNAME
    assert pod.owner == "ReplicaSet/web-1" and pod.do_not_disrupt and pod.priority == 100


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        (
            {"containers": [{"resources": {"requests": {"cpu": "lots"}}}]},
            "spec.containers[0].resources.requests.cpu",
        ),
        ({"tolerations": [{"key": "a", "effect": "Sometimes"}]}, "spec.tolerations[0].effect"),
        (
            {"topologySpreadConstraints": [{"maxSkew": 0, "topologyKey": ZONE}]},
            "spec.topologySpreadConstraints[0].maxSkew",
        ),
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {"key": "k", "operator": "Gt", "values": ["x"]}
                                    ]
                                }
                            ]
                        }
                    }
                }
            },
            "nodeSelectorTerms[0].matchExpressions[0].values",
        ),
        ({"priority": "high"}, "spec.priority"),
        ({"nodeSelector": ["a"]}, "spec.nodeSelector"),
    ],
)
def test_bad_fields_name_their_path(patch: dict, path: str) -> None:
    with pytest.raises(
        ValueError, match=path.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")
    ):
        pod_from_manifest(manifest(**patch))


def test_missing_name_is_reported() -> None:
    with pytest.raises(ValueError, match=r"metadata\.name"):
        pod_from_manifest({"spec": {"containers": []}})
