"""Which CPU architecture a SageMaker instance type runs (C-08).

AWS names Graviton (arm64) instance families with a ``g`` right after the generation number:
general purpose M6g, M6gd, M7g, M7gd, M8g, T4g; compute optimized C6g, C6gd, C6gn, C7g, C7gd, C7gn,
C8g; memory optimized R6g, R6gd, R7g, R7gd, R8g, X2gd; storage optimized I4g, Im4gn, Is4gen;
HPC Hpc7g; GPU G5g (sources: the AWS Graviton Technical Guide, github.com/aws/aws-graviton-getting-started,
README and transition-guide.md; AWS Machine Learning Blog, 2022-11-14, "Run machine learning inference
workloads on AWS Graviton-based instances with Amazon SageMaker"). SageMaker's ``ml.`` types reuse
the EC2 family names (``ml.c7g.xlarge`` is a C7g). Every other family (``m5``, ``c6i``, ``c7a``,
``g5``, ``p4d``, ``inf2``, ``trn1``, …) is x86-64 (amd64): the ``g`` of ``g5``/``g6e`` is the GPU
family letter, before the generation, not after it.
"""

from __future__ import annotations

import re

#: the Graviton families listed by AWS (documentation; the rule below decides, this list is its test)
GRAVITON_FAMILIES = ("m6g", "m6gd", "m7g", "m7gd", "m8g", "t4g", "c6g", "c6gd", "c6gn", "c7g", "c7gd", "c7gn",
                     "c8g", "r6g", "r6gd", "r7g", "r7gd", "r8g", "x2gd", "i4g", "im4gn", "is4gen", "hpc7g", "g5g")
#: instance types of SageMaker local mode: no hardware to compare with
LOCAL_TYPES = ("local", "local_gpu")

_GRAVITON = re.compile(r"^[a-z]+\d+g[a-z]*$")


def instance_family(instance_type: str) -> str:
    """``ml.c7g.xlarge`` → ``c7g``; ``m5`` → ``m5``."""
    text = instance_type.strip().lower()
    parts = text.split(".")
    if parts[0] == "ml":
        parts = parts[1:]
    return parts[0] if parts else text


def instance_architecture(instance_type: str) -> str | None:
    """``arm64`` for a Graviton family, ``amd64`` for any other; None for local mode's types."""
    if instance_type.strip().lower() in LOCAL_TYPES:
        return None
    return "arm64" if _GRAVITON.match(instance_family(instance_type)) else "amd64"


def why(family: str) -> str:
    return "AWS Graviton, arm64" if _GRAVITON.match(family) else "x86-64"
