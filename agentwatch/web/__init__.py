"""What the distro adds to the watched app itself (health endpoints, request ids)."""
