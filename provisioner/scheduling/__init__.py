"""The pure scheduling core: requirements, fit, topology and the batch bin-packer."""
