"""Image push moved to :mod:`sagemaker_rosetta.registry` (the one Docker layer); re-exported here."""

from sagemaker_rosetta.registry import ECR_HOST, PushError, ecr_token, push_images, registry_auth, target

__all__ = ["ECR_HOST", "PushError", "ecr_token", "push_images", "registry_auth", "target"]
