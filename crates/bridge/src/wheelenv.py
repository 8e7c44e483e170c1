"""The bridge's helper for offline bundles, run by the server's own interpreter with ``-I``.

``probe`` prints what the interpreter is (version, implementation, machine, glibc).
``install WHEELS_DIR INDEX TARGET`` unpacks, for every distribution in the bundle, the one
wheel that suits this interpreter best into TARGET (an importable directory the bridge puts on
PYTHONPATH), after checking each wheel's SHA-256 against the bundle's index.

Standard library only, and syntax old interpreters parse (f-strings, nothing newer): this runs
before we know the interpreter is new enough, and must be able to say so itself. Wheels are zip
files; installing one without pip means extracting it, with ``<name>-<ver>.data/purelib`` and
``platlib`` merged into the root (the other ``.data`` categories, scripts and headers, mean
nothing to an imported plugin).
"""

import hashlib
import json
import os
import platform
import re
import sys
import zipfile

MIN_VERSION = (3, 10)


def fail(message):
    sys.stderr.write("error: " + message + "\n")
    sys.exit(2)


def glibc_version():
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        return None
    match = re.match(r"glibc (\d+)\.(\d+)", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def platform_tags():
    arch = platform.machine()
    tags = []
    glibc = glibc_version()
    if glibc is not None and glibc[0] == 2:
        # PEP 600: manylinux_2_N runs on glibc 2.N and newer; the legacy names are aliases.
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        for minor in range(glibc[1], 4, -1):
            tags.append(f"manylinux_2_{minor}_{arch}")
            if minor in legacy:
                tags.append(f"{legacy[minor]}_{arch}")
    tags.append(f"linux_{arch}")
    return tags


def supported_tags():
    """Every (python, abi, platform) tag this interpreter accepts, best first (PEP 425)."""
    major, minor = sys.version_info[:2]
    interp = f"cp{major}{minor}"
    plats = platform_tags()
    tags = []
    if sys.implementation.name == "cpython":
        tags += [(interp, interp, p) for p in plats]
        tags += [(f"cp{major}{m}", "abi3", p) for m in range(minor, 1, -1) for p in plats]
        tags += [(interp, "none", p) for p in plats]
    for m in range(minor, -1, -1):
        tags += [(f"py{major}{m}", "none", p) for p in plats]
    tags += [(f"py{major}", "none", p) for p in plats]
    if sys.implementation.name == "cpython":
        tags.append((interp, "none", "any"))
    for m in range(minor, -1, -1):
        tags.append((f"py{major}{m}", "none", "any"))
    tags.append((f"py{major}", "none", "any"))
    return tags


def probe():
    print(
        json.dumps(
            {
                "version": list(sys.version_info[:3]),
                "implementation": sys.implementation.name,
                "machine": platform.machine(),
                "glibc": glibc_version(),
            }
        )
    )


def normalize(name):
    return re.sub(r"[-_.]+", "_", name).lower()


def parse_wheel_name(filename):
    """(distribution, version, [(py, abi, plat), ...]) of a wheel file name (PEP 427)."""
    parts = filename[: -len(".whl")].split("-")
    if len(parts) not in (5, 6):
        fail(f"{filename} is not a wheel file name (name-version[-build]-python-abi-platform.whl)")
    name, version = parts[0], parts[1]
    pys, abis, plats = parts[-3].split("."), parts[-2].split("."), parts[-1].split(".")
    return normalize(name), version, [(p, a, q) for p in pys for a in abis for q in plats]


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_unsafe_member(name):
    """Whether zip member ``name`` could land outside the target: an absolute name, a ``..``
    part, or a backslash (a separator to the Windows tools that may have made the wheel)."""
    return name.startswith("/") or "\\" in name or ".." in name.split("/")


def extract(wheel_path, target):
    with zipfile.ZipFile(wheel_path) as archive:
        for info in archive.infolist():
            name = info.filename
            if is_unsafe_member(name):
                fail(f"{os.path.basename(wheel_path)} contains the unsafe path {name!r}")
            parts = name.split("/")
            if len(parts) > 2 and parts[0].endswith(".data"):
                if parts[1] not in ("purelib", "platlib"):
                    continue
                parts = parts[2:]
            if name.endswith("/"):
                continue
            dest = os.path.join(target, *parts)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with archive.open(info) as src, open(dest, "wb") as out:
                while True:
                    block = src.read(1 << 20)
                    if not block:
                        break
                    out.write(block)
            mode = (info.external_attr >> 16) & 0o777
            if mode & 0o111:
                os.chmod(dest, 0o755)


def install(wheels_dir, index_path, target):
    with open(index_path, "rb") as f:
        index = json.load(f)
    hashes = index.get("wheels")
    if not isinstance(hashes, dict) or not hashes:
        fail(f"{index_path} lists no wheels")
    rank = {tag: i for i, tag in enumerate(supported_tags())}
    best = {}
    for filename in sorted(hashes):
        dist, version, tags = parse_wheel_name(filename)
        score = min((rank[t] for t in tags if t in rank), default=None)
        if score is None:
            continue
        if dist not in best or score < best[dist][0]:
            best[dist] = (score, filename, version)
    major, minor = sys.version_info[:2]
    here = f"{sys.implementation.name} {major}.{minor} on {platform.machine()}"
    for requirement in index.get("requirements", []):
        if ";" in requirement:
            # Guarded by an environment marker: evaluating PEP 508 markers needs more than the
            # standard library, and such a requirement may rightly have no wheel here.
            continue
        dist = normalize(re.split(r"[<>=!~; \[]", requirement, maxsplit=1)[0])
        if dist not in best:
            fail(
                f"the bundle has no wheel of {requirement} for {here}; rebuild it with "
                f"`mmplug bundle --python {major}.{minor}`"
            )
    chosen = []
    for dist in sorted(best):
        _, filename, version = best[dist]
        path = os.path.join(wheels_dir, filename)
        if not os.path.isfile(path):
            fail(f"{filename} is listed in the bundle's index but missing")
        if sha256_of(path) != hashes[filename]:
            fail(f"{filename} does not match its SHA-256 in the bundle's index")
        extract(path, target)
        chosen.append(filename)
    with open(os.path.join(target, "mmplug-env.json"), "w") as f:
        json.dump({"python": list(sys.version_info[:3]), "wheels": chosen}, f, indent=1)
    print(json.dumps({"wheels": chosen}))


def main(argv):
    if argv[:1] == ["probe"]:
        probe()
    elif argv[:1] == ["install"] and len(argv) == 4:
        if sys.version_info[:2] < MIN_VERSION:
            fail(
                "Python {}.{} is too old; mmplug needs 3.10 or newer".format(*sys.version_info[:2])
            )
        install(argv[1], argv[2], argv[3])
    else:
        fail("usage: wheelenv.py probe | install WHEELS_DIR INDEX TARGET")


if __name__ == "__main__":  # run by the bridge as `python -I -c <this file>`; tests import it
    main(sys.argv[1:])
