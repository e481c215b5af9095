"""Where artifacts live during a local run: a folder standing in for S3, or an S3-compatible endpoint.

``s3://bucket/key`` maps to ``<root>/bucket/key``. Reads follow S3Prefix semantics (every object
whose key starts with the prefix; a key equal to the prefix is a single file named by its last
part), so a definition behaves the same here and on SageMaker.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse


class StoreError(RuntimeError):
    """An S3 URI cannot be read or written."""


def split_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise StoreError(f"not an s3:// URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


class Store(Protocol):
    def fetch(self, uri: str, dest: Path) -> list[Path]: ...
    def get(self, uri: str, dest: Path) -> None: ...
    def put_file(self, src: Path, uri: str) -> None: ...
    def put_dir(self, src: Path, uri: str) -> None: ...
    def read_text(self, uri: str) -> str: ...
    def write_text(self, uri: str, text: str, *, exclusive: bool = False) -> None: ...
    def keys(self, uri: str) -> list[str]: ...
    def exists(self, uri: str) -> bool: ...
    def digest(self, uri: str) -> str: ...
    def location(self, uri: str) -> str: ...
    def describe(self) -> str: ...


def _prefix_match(rel: str, name: str) -> bool:
    return rel.startswith(name)


class LocalStore:
    """S3 as a folder (``file://`` artifacts)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def describe(self) -> str:
        return f"file://{self.root}"

    def path(self, uri: str) -> Path:
        bucket, key = split_uri(uri)
        p = (self.root / bucket / key).resolve()
        if not p.is_relative_to(self.root):
            raise StoreError(f"{uri} escapes the local store")
        return p

    def fetch(self, uri: str, dest: Path) -> list[Path]:
        """Copy every object under the prefix ``uri`` into ``dest``; the files copied."""
        src = self.path(uri)
        dest.mkdir(parents=True, exist_ok=True)
        copied: list[Path] = []
        if src.is_file():
            shutil.copy2(src, dest / src.name)
            return [dest / src.name]
        if src.is_dir():
            for f in sorted(p for p in src.rglob("*") if p.is_file()):
                target = dest / f.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, target)
                copied.append(target)
            return copied
        # a partial key prefix (s3://b/data/tr matches data/train.csv)
        if src.parent.is_dir():
            for f in sorted(src.parent.rglob("*")):
                rel = f.relative_to(src.parent).as_posix()
                if f.is_file() and rel.startswith(src.name):
                    target = dest / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(f, target)
                    copied.append(target)
        if not copied:
            raise StoreError(f"nothing at {uri} (local store {self.root})")
        return copied

    def get(self, uri: str, dest: Path) -> None:
        """Copy the one object ``uri`` to the file ``dest``."""
        src = self.path(uri)
        if not src.is_file():
            raise StoreError(f"no object {uri} (local store {self.root})")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)

    def put_file(self, src: Path, uri: str) -> None:
        dst = self.path(uri)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)

    def put_dir(self, src: Path, uri: str) -> None:
        dst = self.path(uri)
        dst.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, dst, dirs_exist_ok=True)

    def read_text(self, uri: str) -> str:
        p = self.path(uri)
        if not p.is_file():
            raise StoreError(f"no object {uri}")
        return p.read_text()

    def write_text(self, uri: str, text: str, *, exclusive: bool = False) -> None:
        """Write an object; ``exclusive``: FileExistsError if it exists (claims a name atomically)."""
        dst = self.path(uri)
        dst.parent.mkdir(parents=True, exist_ok=True)
        with dst.open("x" if exclusive else "w") as f:
            f.write(text)

    def keys(self, uri: str) -> list[str]:
        """The ``s3://`` URIs of every object under the prefix ``uri`` (S3Prefix semantics)."""
        src = self.path(uri)
        if src.is_file():
            return [uri]
        base = src if src.is_dir() else src.parent
        if not base.is_dir():
            return []
        out = []
        for f in sorted(base.rglob("*")):
            rel = f.relative_to(base).as_posix()
            if f.is_file() and (src.is_dir() or _prefix_match(rel, src.name)):
                out.append("s3://" + f.relative_to(self.root).as_posix())
        return out

    def exists(self, uri: str) -> bool:
        return bool(self.keys(uri))

    def digest(self, uri: str) -> str:
        """A hash of every object's key (relative to ``uri``) and content under the prefix."""
        h = hashlib.sha256()
        for key in self.keys(uri):
            h.update(key[len(uri):].encode() + b"\0")
            with self.path(key).open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        return h.hexdigest()

    def location(self, uri: str) -> str:
        return str(self.path(uri))


class S3Store:
    """An S3-compatible endpoint (MinIO, moto, …) through boto3; buckets are created if missing."""

    def __init__(self, endpoint_url: str, region: str = "us-east-1") -> None:
        import boto3

        self.endpoint_url = endpoint_url
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
        self._buckets: set[str] = set()
        self._lock = threading.Lock()

    def describe(self) -> str:
        return self.endpoint_url

    def _bucket(self, bucket: str) -> None:
        with self._lock:  # parallel steps may write to a new bucket at once
            if bucket in self._buckets:
                return
            names = {b["Name"] for b in self.client.list_buckets().get("Buckets", [])}
            if bucket not in names:
                self.client.create_bucket(Bucket=bucket)
            self._buckets.add(bucket)

    def fetch(self, uri: str, dest: Path) -> list[Path]:
        bucket, prefix = split_uri(uri)
        dest.mkdir(parents=True, exist_ok=True)
        copied: list[Path] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                rel = key[len(prefix):].lstrip("/") or key.rsplit("/", 1)[-1]
                if prefix.endswith("/") or key == prefix or key[len(prefix):].startswith("/"):
                    target = dest / rel
                else:  # partial prefix: keep the name from the last "/" of the prefix
                    target = dest / key[len(prefix.rsplit("/", 1)[0]):].lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                self.client.download_file(bucket, key, str(target))
                copied.append(target)
        if not copied:
            raise StoreError(f"nothing at {uri} ({self.endpoint_url})")
        return copied

    def get(self, uri: str, dest: Path) -> None:
        """Download the one object ``uri`` to the file ``dest``."""
        bucket, key = split_uri(uri)
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.client.download_file(bucket, key, str(dest))

    def put_file(self, src: Path, uri: str) -> None:
        bucket, key = split_uri(uri)
        self._bucket(bucket)
        self.client.upload_file(str(src), bucket, key)

    def put_dir(self, src: Path, uri: str) -> None:
        for f in sorted(p for p in src.rglob("*") if p.is_file()):
            self.put_file(f, uri.rstrip("/") + "/" + f.relative_to(src).as_posix())

    def read_text(self, uri: str) -> str:
        bucket, key = split_uri(uri)
        try:
            return str(self.client.get_object(Bucket=bucket, Key=key)["Body"].read().decode())
        except self.client.exceptions.NoSuchKey:
            raise StoreError(f"no object {uri}") from None
        except self.client.exceptions.NoSuchBucket:
            raise StoreError(f"no object {uri} (no bucket {bucket})") from None

    def write_text(self, uri: str, text: str, *, exclusive: bool = False) -> None:
        bucket, key = split_uri(uri)
        self._bucket(bucket)
        if exclusive:  # S3 conditional write (If-None-Match) claims the key, as O_EXCL does locally
            from botocore.exceptions import ClientError

            try:
                self.client.put_object(Bucket=bucket, Key=key, Body=text.encode(), IfNoneMatch="*")
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                    raise FileExistsError(uri) from None
                raise
            return
        self.client.put_object(Bucket=bucket, Key=key, Body=text.encode())

    def _objects(self, uri: str) -> list[dict[str, Any]]:
        bucket, prefix = split_uri(uri)
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            return [obj for page in pages for obj in page.get("Contents", [])]
        except self.client.exceptions.NoSuchBucket:
            return []

    def keys(self, uri: str) -> list[str]:
        bucket, _ = split_uri(uri)
        return [f"s3://{bucket}/{o['Key']}" for o in self._objects(uri)]

    def exists(self, uri: str) -> bool:
        return bool(self._objects(uri))

    def digest(self, uri: str) -> str:
        """A hash of every object's key and ETag under the prefix (no download)."""
        h = hashlib.sha256()
        _, prefix = split_uri(uri)
        for o in sorted(self._objects(uri), key=lambda o: str(o["Key"])):
            h.update(f"{o['Key'][len(prefix):]}\0{o.get('ETag', '')}\0{o.get('Size', '')}\n".encode())
        return h.hexdigest()

    def location(self, uri: str) -> str:
        return f"{uri} (at {self.endpoint_url})"


def stage_assets(store: Store, assets: dict[str, Path]) -> None:
    """Put a pipeline's declared local files at their S3 URIs."""
    for uri, path in assets.items():
        if path.is_dir():
            store.put_dir(path, uri)
        else:
            store.put_file(path, uri)
