"""Node provisioner (Karpenter analogue). Not built yet: see the node-provisioner issue."""
