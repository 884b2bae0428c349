"""The OCI formats: runtime bundles (runtime-spec v1.0.2) and image layouts (image-spec v1.0.2)."""
