"""A local model registry kept in the run's store (RegisterModel steps, ``rosetta models``).

Like SageMaker's Model Registry: a model package group holds versioned model packages, numbered
1, 2, … in the order they are registered; each has a ``ModelApprovalStatus``
(``PendingManualApproval`` unless the step says otherwise, then ``Approved`` or ``Rejected``), the
inference specification (containers, content types) and the model metrics of the
CreateModelPackage request. Layout in the store (``s3://`` keys, or folders with ``--store``)::

    s3://rosetta-local/model-registry/<group>/group.json
    s3://rosetta-local/model-registry/<group>/versions/<n>.json

A package's local ARN is ``arn:aws:sagemaker:<region>:000000000000:model-package/<group>/<n>``;
a Model step whose container names it (``ModelPackageName``) runs that package's image and model.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
from typing import Any

from rosetta_orchestrator.local.store import Store, StoreError
from rosetta_orchestrator.sdk import LOCAL_ACCOUNT

ROOT = "s3://rosetta-local/model-registry"
STATUSES = ("Approved", "Rejected", "PendingManualApproval")
_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[^:]*:\d{12}:model-package/([^/]+)/(\d+)$")
_lock = threading.Lock()


class RegistryError(ValueError):
    """A package or group that does not exist, or a bad status; the message says what exists."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _region() -> str:
    return os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"


def arn(group: str, version: int) -> str:
    return f"arn:aws:sagemaker:{_region()}:{LOCAL_ACCOUNT}:model-package/{group.lower()}/{version}"


class Registry:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- reading ----------------------------------------------------------------------------
    def groups(self) -> list[dict[str, Any]]:
        out = []
        for key in self.store.keys(f"{ROOT}/"):
            if key.endswith("/group.json"):
                out.append(json.loads(self.store.read_text(key)))
        return sorted(out, key=lambda g: str(g["ModelPackageGroupName"]))

    def versions(self, group: str) -> list[dict[str, Any]]:
        name = self._group_name(group)
        docs = [json.loads(self.store.read_text(k)) for k in self.store.keys(f"{ROOT}/{name}/versions/")
                if k.endswith(".json")]
        return sorted(docs, key=lambda d: int(d["ModelPackageVersion"]))

    def describe(self, ref: str) -> dict[str, Any]:
        """A package by ARN or ``GROUP/VERSION``."""
        group, version = self._parse(ref)
        try:
            return dict(json.loads(self.store.read_text(f"{ROOT}/{group}/versions/{version}.json")))
        except StoreError:
            known = ", ".join(str(v["ModelPackageVersion"]) for v in self.versions(group)) or "none"
            raise RegistryError(f"no version {version} in model package group {group} (versions: {known})") from None

    def _group_name(self, group: str) -> str:
        for g in self.groups():
            if str(g["ModelPackageGroupName"]).lower() == group.lower():
                return str(g["ModelPackageGroupName"])
        known = ", ".join(str(g["ModelPackageGroupName"]) for g in self.groups()) or "none yet"
        raise RegistryError(f"no model package group {group!r} in {self.store.describe()} (groups: {known})")

    def _parse(self, ref: str) -> tuple[str, int]:
        m = _ARN.match(ref)
        if m:
            return self._group_name(m.group(1)), int(m.group(2))
        group, sep, version = ref.rpartition("/")
        if sep and version.isdigit():
            return self._group_name(group), int(version)
        raise RegistryError(f"{ref!r} is not a model package ARN or GROUP/VERSION "
                            "(e.g. rosetta-iris/1; `rosetta models list` shows them)")

    # -- writing ----------------------------------------------------------------------------
    def register(self, request: dict[str, Any], *, source: dict[str, str]) -> dict[str, Any]:
        """CreateModelPackage with a ``ModelPackageGroupName``: the next version of the group."""
        group = request.get("ModelPackageGroupName")
        if not isinstance(group, str) or not group:
            raise RegistryError("RegisterModel needs a ModelPackageGroupName (unversioned packages "
                                "are not kept in the local registry)")
        status = request.get("ModelApprovalStatus") or "PendingManualApproval"
        if status not in STATUSES:
            raise RegistryError(f"ModelApprovalStatus {status!r} is not one of {', '.join(STATUSES)}")
        with _lock:
            try:
                existing = self._group_name(group)
            except RegistryError:
                existing = group
                self.store.write_text(f"{ROOT}/{group}/group.json", json.dumps({
                    "ModelPackageGroupName": group, "CreationTime": _now(),
                    "ModelPackageGroupArn": f"arn:aws:sagemaker:{_region()}:{LOCAL_ACCOUNT}:model-package-group/"
                                            f"{group.lower()}"}, indent=2))
            group = existing
            version = len(self.store.keys(f"{ROOT}/{group}/versions/")) + 1
            while True:
                doc = {
                    "ModelPackageGroupName": group,
                    "ModelPackageVersion": version,
                    "ModelPackageArn": arn(group, version),
                    "ModelPackageName": group,
                    "ModelPackageStatus": "Completed",
                    "ModelApprovalStatus": status,
                    "CreationTime": _now(),
                    "LastModifiedTime": _now(),
                    "InferenceSpecification": request.get("InferenceSpecification") or {},
                    "ModelMetrics": request.get("ModelMetrics") or {},
                    "CustomerMetadataProperties": request.get("CustomerMetadataProperties") or {},
                    "ModelPackageDescription": request.get("ModelPackageDescription") or "",
                    "MetadataProperties": {"GeneratedBy": source.get("execution_arn", ""),
                                           "ProjectId": source.get("pipeline", "")},
                    "RegisteredBy": source,
                }
                try:
                    self.store.write_text(f"{ROOT}/{group}/versions/{version}.json", json.dumps(doc, indent=2),
                                          exclusive=True)
                    return doc
                except FileExistsError:  # another run registered this number first
                    version += 1

    def set_status(self, ref: str, status: str, description: str = "") -> dict[str, Any]:
        """UpdateModelPackage: approve or reject a version."""
        if status not in STATUSES:
            raise RegistryError(f"status {status!r} is not one of {', '.join(STATUSES)}")
        doc = self.describe(ref)
        doc["ModelApprovalStatus"] = status
        doc["LastModifiedTime"] = _now()
        if description:
            doc["ApprovalDescription"] = description
        self.store.write_text(f"{ROOT}/{doc['ModelPackageGroupName']}/versions/{doc['ModelPackageVersion']}.json",
                              json.dumps(doc, indent=2))
        return doc

    def container(self, ref: str) -> dict[str, Any]:
        """The first inference container of a package (for a Model step naming the package)."""
        doc = self.describe(ref)
        containers = (doc.get("InferenceSpecification") or {}).get("Containers") or []
        if not containers:
            raise RegistryError(f"model package {ref} has no inference container")
        return dict(containers[0])
