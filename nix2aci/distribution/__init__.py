"""Publishing OCI images: references, sources, skopeo, registries.d, simple signing and consumer policies."""
