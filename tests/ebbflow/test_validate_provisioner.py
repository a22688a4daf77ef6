"""`ebbflow validate` on Karpenter kinds: NodePool, NodeClaim, EC2NodeClass under karpenter.sh,
karpenter.k8s.aws and ebbflow.io, errors as `file:doc N: field.path: message`."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from ebbflow.cli import app
from scaler.manifests import registered_kinds

runner = CliRunner()
EXAMPLES = Path(__file__).parents[2] / "examples" / "provision"

NODEPOOL = """\
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: default}
spec:
  template:
    spec:
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
      requirements:
        - {key: karpenter.k8s.aws/instance-category, operator: In, values: [c, m, r]}
        - {key: karpenter.sh/capacity-type, operator: In, values: [spot, on-demand]}
"""

NODECLAIM = """\
apiVersion: ebbflow.io/v1
kind: NodeClaim
metadata: {name: default-abc12}
spec:
  nodeClassRef: {group: ebbflow.io, kind: NodeClass, name: default}
  requirements:
    - {key: karpenter.sh/nodepool, operator: In, values: [default]}
"""

NODECLASS = """\
apiVersion: ebbflow.io/v1
kind: NodeClass
metadata: {name: default}
spec:
  amiSelectorTerms: [{alias: al2023@latest}]
  role: KarpenterNodeRole
  subnetSelectorTerms: [{tags: {karpenter.sh/discovery: demo}}]
  securityGroupSelectorTerms: [{tags: {karpenter.sh/discovery: demo}}]
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_karpenter_kinds_are_registered_under_their_groups_and_ours() -> None:
    kinds = registered_kinds()
    assert set(kinds["NodePool"]) == {"karpenter.sh/v1", "ebbflow.io/v1"}
    assert set(kinds["NodeClaim"]) == {"karpenter.sh/v1", "ebbflow.io/v1"}
    assert set(kinds["EC2NodeClass"]) == {"karpenter.k8s.aws/v1", "ebbflow.io/v1"}
    assert set(kinds["NodeClass"]) == {"ebbflow.io/v1"}
    assert "ScaledObject" in kinds  # the scaler's kinds stay registered


def test_valid_karpenter_manifests_print_ok(tmp_path: Path) -> None:
    path = write(tmp_path, "np.yaml", "---\n".join([NODEPOOL, NODECLAIM, NODECLASS]))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert f"OK {path}:doc 1: NodePool/default" in result.output
    assert f"OK {path}:doc 2: NodeClaim/default-abc12" in result.output
    assert f"OK {path}:doc 3: NodeClass/default" in result.output


def test_errors_name_file_document_and_field(tmp_path: Path) -> None:
    bad = NODEPOOL.replace("values: [c, m, r]", "values: []")
    path = write(tmp_path, "bad.yaml", NODECLASS + "---\n" + bad)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert (
        f"{path}:doc 2: spec.template.spec.requirements[0].values: "
        "operator In requires at least one value" in result.output
    )
    assert f"OK {path}:doc 1: NodeClass/default" in result.output


def test_wrong_version_of_a_karpenter_kind_is_an_error(tmp_path: Path) -> None:
    old = NODEPOOL.replace("karpenter.sh/v1", "karpenter.sh/v1beta1", 1)
    path = write(tmp_path, "old.yaml", old)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert (
        f"{path}:doc 1: apiVersion: must be one of karpenter.sh/v1, ebbflow.io/v1, "
        'got "karpenter.sh/v1beta1"' in result.output
    )


def test_unknown_kind_of_a_karpenter_group_lists_that_groups_kinds(tmp_path: Path) -> None:
    typo = NODEPOOL.replace("kind: NodePool", "kind: NodePol")
    path = write(tmp_path, "typo.yaml", typo)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "kind: unknown kind 'NodePol'; known: NodeClaim, NodePool" in result.output


def test_examples_validate_and_pods_are_skipped_with_a_warning() -> None:
    nodepools, pods = EXAMPLES / "nodepools.yaml", EXAMPLES / "pods.yaml"
    result = runner.invoke(app, ["validate", str(nodepools), str(pods)])
    assert result.exit_code == 0, result.output
    assert f"OK {nodepools}:doc 1: NodePool/general-purpose" in result.output
    assert f"OK {nodepools}:doc 2: NodePool/gpu" in result.output
    assert f"OK {nodepools}:doc 3: EC2NodeClass/default" in result.output
    assert "v1 Pod is not a kind ebbflow validates; skipped" in result.output
    assert "error" not in result.output


def test_example_pods_are_valid_kubernetes_pods() -> None:
    import kubernetes_validate
    import yaml

    version = kubernetes_validate.utils.latest_version()
    pods = list(yaml.safe_load_all((EXAMPLES / "pods.yaml").read_text()))
    assert len(pods) == 7
    for pod in pods:
        kubernetes_validate.validate(pod, version, strict=True)  # raises on a schema error
