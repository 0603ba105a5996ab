"""Per-container metrics from cgroups (v2, or v1 where the host still mounts it) for Docker,
Podman, containerd/CRI-O and systemd services; names and images from the Docker or Podman API.

``cgroups`` finds the containers and reads their files, ``engine_api`` asks the engine's Unix
socket for names, images and states, ``collector`` turns both into samples."""
