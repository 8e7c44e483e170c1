"""Makes a scratch copy of an example for make e2e (scripts/e2e/run.sh calls it).

    scratch_copy.py EXAMPLE_DIR DEST NEW_ID REQUIREMENT ROUTE_FILE

The copy gets another plugin id (so it installs beside the example as shipped), its dependency
declared in requirements.txt when the example does not declare it already (the examples as
shipped do, see their requirements.txt; the fallback keeps the copy usable on its own), and the
route in ROUTE_FILE inserted before plugin.py's __main__ block.
"""

import json
import re
import shutil
import sys
from pathlib import Path

src, dest, new_id, requirement, route_file = sys.argv[1:]
dest_path = Path(dest)
shutil.rmtree(dest_path, ignore_errors=True)
shutil.copytree(src, dest_path, ignore=shutil.ignore_patterns("tests", "dist", "__pycache__"))

manifest_path = dest_path / "plugin.json"
manifest = json.loads(manifest_path.read_text())
manifest["id"] = new_id
manifest["name"] += " (make e2e copy)"
manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")

reqs = dest_path / "requirements.txt"
lines = reqs.read_text().splitlines() if reqs.exists() else []
name = re.compile(rf"^\s*{re.escape(requirement)}\s*([<>=!~\[;]|$)", re.I)
if not any(name.match(line) for line in lines):
    reqs.write_text("\n".join([*lines, requirement]) + "\n")

entry = dest_path / "plugin.py"
code = entry.read_text()
main = 'if __name__ == "__main__":'
if main not in code:
    sys.exit(f"{entry}: no __main__ block to put the e2e route before")
route = Path(route_file).read_text().strip()
entry.write_text(code.replace(main, route + "\n\n\n" + main, 1))
