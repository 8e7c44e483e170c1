"""Do the entry module's imports resolve from the bundle? (``mmplug bundle``'s import check)

On the server the plugin runs as ``python ENTRY`` with the bundle's wheels unpacked on
``PYTHONPATH``: what it imports must come from the standard library of that Python, the
plugin's own files (the entry module's directory is ``sys.path[0]``) or the wheels. A missing
dependency otherwise shows up only on the server, as ``No module named ...`` at activation.

The check reads source, never runs it:

- the imports of the entry module, and of every module of the plugin's own that it imports
  (followed transitively, relative imports included);
- an import counts unless it is guarded: inside ``if TYPE_CHECKING:``, or in the body of a
  ``try`` whose handlers catch ``ImportError`` (or ``ModuleNotFoundError``, ``Exception``,
  ``BaseException``, a bare ``except``);
- ``import a.b.c`` needs ``a.b.c`` when ``a`` or ``a.b`` is a namespace package (a directory
  without ``__init__.py``, like ``google`` in protobuf's wheel, which does not provide
  ``google.cloud``); below a regular package or module the rest may be attributes, so ``a``
  suffices;
- the standard library is the bundled Python version's (``sys.stdlib_module_names`` of this
  interpreter, corrected by the modules added or removed between versions);
- the wheels are read for the modules they install (their files, not their metadata), per
  target, since a dependency may be bundled for some Python versions only.

What is missing is named by distribution: the one installed in this environment that provides
the module, a few well-known names that differ from their module (``yaml`` is ``PyYAML``), or
else the module's own top-level name.
"""

from __future__ import annotations

import ast
import sys
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path, PurePosixPath

from .console import progress
from .errors import CLIError

MODULE = "module"
PACKAGE = "package"
NAMESPACE = "namespace"

_SOURCE_SUFFIXES = (".py",)
_EXTENSION_SUFFIXES = (".so", ".pyd", ".abi3.so")
_GUARD_EXCEPTIONS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}

# Standard-library modules that exist only in some of the Python versions mmplug bundles
# (3.10 and newer) or may run under: removed in 3.11 (binhex, PEP 594's early one), 3.12
# (PEP 632, PEP 594) and 3.13 (PEP 594); added in 3.11 (tomllib) and 3.14.
_REMOVED_IN: dict[str, tuple[int, int]] = {
    "binhex": (3, 11),
    **dict.fromkeys(("distutils", "asynchat", "asyncore", "imp", "smtpd"), (3, 12)),
    **dict.fromkeys(
        (
            "aifc",
            "audioop",
            "cgi",
            "cgitb",
            "chunk",
            "crypt",
            "imghdr",
            "lib2to3",
            "mailcap",
            "msilib",
            "nis",
            "nntplib",
            "ossaudiodev",
            "pipes",
            "sndhdr",
            "spwd",
            "sunau",
            "telnetlib",
            "uu",
            "xdrlib",
        ),
        (3, 13),
    ),
}
_ADDED_IN: dict[str, tuple[int, int]] = {
    "tomllib": (3, 11),
    "annotationlib": (3, 14),
    "compression": (3, 14),
}

# Distributions whose name is not their module's, for modules not installed here.
_KNOWN_DISTRIBUTIONS = {
    "yaml": "PyYAML",
    "PIL": "Pillow",
    "cv2": "opencv-python",
    "sklearn": "scikit-learn",
    "bs4": "beautifulsoup4",
    "dateutil": "python-dateutil",
    "jwt": "PyJWT",
    "dotenv": "python-dotenv",
    "magic": "python-magic",
    "multipart": "python-multipart",
    "OpenSSL": "pyOpenSSL",
    "Crypto": "pycryptodome",
    "google.protobuf": "protobuf",
    "grpc": "grpcio",
    "attr": "attrs",
    "zmq": "pyzmq",
    "serial": "pyserial",
    "psycopg2": "psycopg2-binary",
    "docx": "python-docx",
    "slugify": "python-slugify",
}


def stdlib_modules(python: str) -> frozenset[str]:
    """Top-level standard-library module names of Python ``python`` ("3.12")."""
    major, minor = (int(part) for part in python.split(".")[:2])
    version = (major, minor)
    names = set(sys.stdlib_module_names)
    for name, removed in _REMOVED_IN.items():
        if version >= removed:
            names.discard(name)
        else:
            names.add(name)
    for name, added in _ADDED_IN.items():
        if version >= added:
            names.add(name)
        else:
            names.discard(name)
    return frozenset(names)


@dataclass
class ModuleTree:
    """Importable dotted names and what each is: a module, a regular package or a namespace
    package; ``files`` maps a name to its source file, for the plugin's own modules."""

    kinds: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    def add(self, parts: tuple[str, ...], source: Path | None = None) -> None:
        """Records a file at ``parts`` (relative to an import root)."""
        if not parts:
            return
        *dirs, filename = parts
        stem = _module_stem(filename)
        if stem is None or not all(d.isidentifier() for d in dirs):
            return
        for i in range(1, len(dirs) + 1):
            self.kinds.setdefault(".".join(dirs[:i]), NAMESPACE)
        if stem == "__init__":
            if not dirs:
                return
            name = ".".join(dirs)
            self.kinds[name] = PACKAGE
        else:
            name = ".".join([*dirs, stem])
            if self.kinds.get(name) not in (PACKAGE,):
                self.kinds[name] = MODULE
        if source is not None and filename.endswith(_SOURCE_SUFFIXES):
            self.files[name] = source

    def merged(self, other: ModuleTree) -> ModuleTree:
        tree = ModuleTree(dict(other.kinds), dict(other.files))
        for name, kind in self.kinds.items():
            if tree.kinds.get(name) in (None, NAMESPACE):
                tree.kinds[name] = kind
        tree.files.update(self.files)
        return tree

    def resolves(self, dotted: str) -> bool:
        """Whether ``import dotted`` would find something (see the module docstring)."""
        parts = dotted.split(".")
        for i in range(1, len(parts) + 1):
            kind = self.kinds.get(".".join(parts[:i]))
            if kind is None:
                return False
            if kind != NAMESPACE:
                return True
        return True  # a namespace package itself imports fine


def _module_stem(filename: str) -> str | None:
    if filename.endswith(_SOURCE_SUFFIXES):
        stem = filename[: -len(".py")]
    elif filename.endswith(_EXTENSION_SUFFIXES):
        stem = filename.split(".", 1)[0]
    else:
        return None
    return stem if stem.isidentifier() else None


def wheel_modules(wheel: Path) -> ModuleTree:
    """The modules a wheel installs: its files at the top level and under
    ``*.data/purelib`` or ``*.data/platlib``."""
    tree = ModuleTree()
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            parts = tuple(PurePosixPath(name).parts)
            if not parts or parts[0].endswith(".dist-info"):
                continue
            if parts[0].endswith(".data"):
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue
                parts = parts[2:]
            tree.add(parts)
    return tree


def own_modules(files: Iterable[tuple[str, Path]], entry: str) -> ModuleTree:
    """The plugin's own modules, importable from the entry module's directory."""
    root = PurePosixPath(entry).parent
    tree = ModuleTree()
    for rel, path in files:
        rel_path = PurePosixPath(rel)
        if root != PurePosixPath(".") and root not in rel_path.parents:
            continue
        tree.add(rel_path.relative_to(root).parts, path)
    return tree


@dataclass(frozen=True)
class Import:
    name: str  # dotted, absolute
    where: str  # "plugin.py:12"


@dataclass
class _Scan:
    """The imports of one module, split into required ones and candidates (``from a import
    b`` may name a submodule ``a.b``, to follow when it is the plugin's own)."""

    required: list[tuple[str, int]] = field(default_factory=list)
    candidates: list[str] = field(default_factory=list)


def _guarded_body(handlers: list[ast.ExceptHandler]) -> bool:
    for handler in handlers:
        if handler.type is None:
            return True
        types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        for t in types:
            name = (
                t.id if isinstance(t, ast.Name) else t.attr if isinstance(t, ast.Attribute) else ""
            )
            if name in _GUARD_EXCEPTIONS:
                return True
    return False


def _try_imports(
    body: list[ast.stmt],
    handlers: list[ast.ExceptHandler],
    orelse: list[ast.stmt],
    finalbody: list[ast.stmt],
) -> Iterator[ast.Import | ast.ImportFrom]:
    """The unguarded imports of a ``try`` statement: its body's unless a handler catches a
    failed import, and those of its handlers, ``else`` and ``finally``."""
    if not _guarded_body(handlers):
        yield from _import_nodes(body)
    yield from _import_nodes(handlers)
    yield from _import_nodes(orelse)
    yield from _import_nodes(finalbody)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(nodes: Iterable[ast.AST]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The unguarded import statements among ``nodes`` and below them."""
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _import_nodes(node.orelse)
        elif isinstance(node, ast.Try):  # noqa: SIM114 (one branch per type, so mypy narrows)
            yield from _try_imports(node.body, node.handlers, node.orelse, node.finalbody)
        # ``except*`` (ast.TryStar) exists from Python 3.11; the CLI also runs on 3.10.
        elif sys.version_info >= (3, 11) and isinstance(node, ast.TryStar):
            yield from _try_imports(node.body, node.handlers, node.orelse, node.finalbody)
        else:
            yield from _import_nodes(ast.iter_child_nodes(node))


def scan_source(source: str, filename: str, module: str, is_package: bool) -> _Scan:
    """The imports of one module's source; relative ones made absolute against ``module``."""
    tree = ast.parse(source, filename=filename)
    scan = _Scan()
    package = module if is_package else module.rpartition(".")[0]
    for node in _import_nodes(tree.body):
        if isinstance(node, ast.Import):
            scan.required += [(alias.name, node.lineno) for alias in node.names]
            continue
        if node.level == 0:
            base = node.module or ""
        else:
            parts = package.split(".") if package else []
            if node.level - 1 > len(parts):
                continue  # beyond the top: Python's own error at run time
            parts = parts[: len(parts) - (node.level - 1)]
            base = ".".join([*parts, *([node.module] if node.module else [])])
        if base:
            scan.required.append((base, node.lineno))
        scan.candidates += [f"{base}.{a.name}" if base else a.name for a in node.names]
    return scan


def plugin_imports(own: ModuleTree, entry: str, entry_path: Path) -> list[Import]:
    """Every import of the entry module and of the plugin's own modules it reaches that the
    plugin's own files do not satisfy, in the order met."""
    entry_name = PurePosixPath(entry).name
    queue: list[tuple[str, Path, str, bool]] = [("__main__", entry_path, entry_name, False)]
    seen_files: set[Path] = {entry_path}
    found: list[Import] = []
    seen_imports: set[str] = set()
    root = PurePosixPath(entry).parent

    def follow(name: str) -> None:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            path = own.files.get(prefix)
            if path is not None and path not in seen_files:
                seen_files.add(path)
                shown = (root / PurePosixPath(*prefix.split("."))).as_posix()
                is_package = own.kinds.get(prefix) == PACKAGE
                shown += "/__init__.py" if is_package else ".py"
                queue.append((prefix, path, shown, is_package))

    while queue:
        module, path, shown, is_package = queue.pop(0)
        try:
            source = path.read_text(encoding="utf-8")
            scan = scan_source(source, shown, module, is_package)
        except (SyntaxError, UnicodeDecodeError, ValueError) as e:
            progress(
                f"not checking the imports of {shown}: Python {_running()} cannot parse it ({e})"
            )
            continue
        for name, line in scan.required:
            follow(name)
            if own.resolves(name) and own.kinds.get(name.split(".")[0]) != NAMESPACE:
                continue
            if name not in seen_imports:
                seen_imports.add(name)
                found.append(Import(name, f"{shown}:{line}"))
        for name in scan.candidates:
            if own.kinds.get(name) is not None:
                follow(name)
    return found


def _running() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


@dataclass(frozen=True)
class Target:
    """One bundled Python version (and platform) with its wheels."""

    label: str  # "Python 3.12 on linux-amd64"
    python: str
    wheels: tuple[Path, ...]


def check_imports(
    *,
    files: list[tuple[str, Path]],
    entry: str,
    entry_path: Path,
    targets: list[Target],
    requirements_file: Path,
) -> None:
    """Raises CLIError naming the distributions of the imports nothing in the bundle provides."""
    own = own_modules(files, entry)
    imports = plugin_imports(own, entry, entry_path)
    if not imports:
        return
    cache: dict[Path, ModuleTree] = {}
    missing: dict[str, tuple[Import, list[str]]] = {}
    for target in targets:
        tree = own
        for wheel in target.wheels:
            if wheel not in cache:
                cache[wheel] = wheel_modules(wheel)
            tree = cache[wheel].merged(tree)
        stdlib = stdlib_modules(target.python)
        for imp in imports:
            if imp.name.split(".")[0] in stdlib or tree.resolves(imp.name):
                continue
            missing.setdefault(imp.name, (imp, []))[1].append(target.label)
    if not missing:
        return

    by_distribution: dict[str, list[str]] = {}
    installed: dict[str, str] = {}
    for name, (imp, labels) in missing.items():
        below_namespace = any(
            tree.kinds.get(".".join(name.split(".")[:i])) == NAMESPACE
            for tree in [own, *cache.values()]
            for i in range(1, name.count(".") + 1)
        )
        detail = f"`{name}` ({imp.where})"
        if len(labels) < len(targets):
            detail += f" for {', '.join(labels)}"
        dist, version = distribution_for(name, below_namespace)
        by_distribution.setdefault(dist, []).append(detail)
        if version:
            installed[dist] = version
    lines = []
    for dist, details in sorted(by_distribution.items(), key=lambda item: item[0].lower()):
        here = f" ({dist}=={installed[dist]} is installed here)" if dist in installed else ""
        lines.append(f"  {dist}{here}: {', '.join(details)}")
    names = ", ".join(sorted(by_distribution, key=str.lower))
    raise CLIError(
        f"the plugin imports modules that neither its own files nor the bundled wheels "
        f"provide, so it would fail to start on the server; add {names} to "
        f"{requirements_file}, pinned (name==version):\n" + "\n".join(lines)
    )


def distribution_for(module: str, below_namespace: bool = False) -> tuple[str, str | None]:
    """The distribution that provides ``module``, and its version when it is installed here:
    the one installed here, a well-known name, or else the module's top-level name (below a
    namespace package, the dotted name with dashes: ``google.cloud.storage`` is
    ``google-cloud-storage`` by convention)."""
    installed = _installed_distribution(module)
    if installed is not None:
        return installed
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        known = _KNOWN_DISTRIBUTIONS.get(".".join(parts[:i]))
        if known:
            return known, None
    return ("-".join(parts) if below_namespace else parts[0]), None


def _installed_distribution(module: str) -> tuple[str, str] | None:
    """The installed distribution (name, version) whose files hold ``module`` or its closest
    parent; a namespace package's directory is shared by several distributions and so names
    none."""
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        name = ".".join(parts[:i])
        if i < len(parts) and _is_namespace_here(name):
            return None
        base = "/".join(parts[:i])
        prefixes = (f"{base}/", f"{base}.py", f"{base}.")
        for dist in metadata.distributions():
            if any(f.as_posix().startswith(prefixes) for f in dist.files or []):
                found = dist.metadata["Name"]
                if found:
                    return str(found), dist.version
    return None


def _is_namespace_here(name: str) -> bool:
    """Whether ``name`` is a namespace package in this environment (no ``__init__.py``)."""
    for entry in sys.path:
        directory = Path(entry or ".", *name.split("."))
        if directory.is_dir():
            return not (directory / "__init__.py").exists()
    return False
