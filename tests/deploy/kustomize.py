"""Render a kustomize overlay: `kubectl kustomize` where it runs, else a small Python renderer.

The Python renderer implements only what deploy/k8s uses (and refuses anything else, so a new
feature in a kustomization cannot be silently ignored): ``resources`` (files and directories with
their own kustomization), ``namespace``, ``labels`` (metadata labels only), ``replicas``,
``images`` (newName/newTag) and ``patches`` (strategic-merge files, optionally with a ``target``
of kind/name). test_validators.py checks that it renders exactly what kubectl's kustomize does
wherever kubectl is installed, so either path validates the same manifests.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "labels",
    "replicas",
    "images",
    "patches",
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume"}
Doc = dict[str, Any]


class KustomizeError(ValueError):
    pass


def kubectl_kustomize(directory: Path) -> list[Doc] | None:
    """kubectl's built-in kustomize, or None when kubectl is not installed or cannot run it."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise KustomizeError(f"kubectl kustomize {directory}: {result.stderr.strip()}")
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def load_docs(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def merge(base: Any, patch: Any) -> Any:
    """Strategic merge, as far as these manifests need: maps merge, lists of named maps merge by
    name, other lists and scalars are replaced; a null deletes the key."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = merge(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
        return out
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(i, dict) and "name" in i for i in base + patch)
    ):
        out_list = [copy.deepcopy(i) for i in base]
        names = [i["name"] for i in out_list]
        for item in patch:
            if item["name"] in names:
                index = names.index(item["name"])
                out_list[index] = merge(out_list[index], item)
            else:
                out_list.append(copy.deepcopy(item))
        return out_list
    return copy.deepcopy(patch)


def python_kustomize(directory: Path) -> list[Doc]:
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise KustomizeError(
            f"{directory}/kustomization.yaml: {sorted(unknown)} not supported by the Python "
            "renderer (tests/deploy/kustomize.py); extend it or install kubectl"
        )
    docs: list[Doc] = []
    for entry in spec.get("resources", []):
        path = directory / entry
        docs += python_kustomize(path) if path.is_dir() else load_docs(path)
    for label in spec.get("labels", []):
        if set(label) - {"pairs"}:
            raise KustomizeError(f"labels: only `pairs` is supported, got {sorted(label)}")
        for doc in docs:
            doc.setdefault("metadata", {}).setdefault("labels", {}).update(label["pairs"])
    for item in spec.get("patches", []):
        if set(item) - {"path", "target"}:
            raise KustomizeError(f"patches: only path/target are supported, got {sorted(item)}")
        for patch in load_docs(directory / item["path"]):
            target = item.get("target") or {
                "kind": patch["kind"],
                "name": patch["metadata"]["name"],
            }
            matched = [
                i
                for i, doc in enumerate(docs)
                if doc["kind"] == target["kind"]
                and ("name" not in target or doc["metadata"]["name"] == target["name"])
            ]
            if not matched:
                raise KustomizeError(f"patch {item['path']}: no resource matches {target}")
            for i in matched:
                body = {k: v for k, v in patch.items() if k not in ("apiVersion", "kind")}
                body["metadata"] = {
                    k: v for k, v in body.get("metadata", {}).items() if k != "name"
                }
                docs[i] = merge(docs[i], body)
    for replica in spec.get("replicas", []):
        found = [
            d
            for d in docs
            if d["kind"] in ("Deployment", "StatefulSet")
            and d["metadata"]["name"] == replica["name"]
        ]
        if not found:
            raise KustomizeError(f"replicas: no Deployment named {replica['name']}")
        for doc in found:
            doc["spec"]["replicas"] = replica["count"]
    for image in spec.get("images", []):
        for doc in docs:
            pod = doc.get("spec", {}).get("template", {}).get("spec", {})
            for container in pod.get("containers", []) + pod.get("initContainers", []):
                name, _, tag = container["image"].partition(":")
                if name == image["name"]:
                    new_tag = image.get("newTag", tag)
                    container["image"] = f"{image.get('newName', name)}:{new_tag}"
    if "namespace" in spec:
        for doc in docs:
            if doc["kind"] not in CLUSTER_SCOPED:
                doc["metadata"]["namespace"] = spec["namespace"]
    return docs


def render(directory: Path) -> tuple[list[Doc], str]:
    """The overlay's documents and the tool that rendered them."""
    docs = kubectl_kustomize(directory)
    if docs is not None:
        return docs, "kubectl kustomize"
    return python_kustomize(directory), "tests/deploy/kustomize.py"
