"""schemathesis hooks for reel's contract runs (scripts/contract/run.sh).

A part PUT must carry exactly the number of bytes its session planned, which no schema can state.
In the stateful phase, whose upload ids come from real sessions through the OpenAPI links, the
part body gets that size (and no checksum headers), and a new upload declares no whole-file
`sha256` (its bytes are only chosen here, later), so a scenario can run a whole upload: create,
part, complete, then the video. The other phases send generated requests as they are.
"""

import json
import os
import urllib.error
import urllib.request

import schemathesis
from schemathesis.generation.meta import TestPhase

PART_PATH = "/v1/videos/uploads/{id}/parts/{part}"
UPLOADS_PATH = "/v1/videos/uploads"
CHECKSUM_HEADERS = ("content-md5", "x-reel-checksum-sha256")


def planned_size(base_url, upload_id, part_number):
    """The size the session plans for the part, or None when it has no such open part."""
    request = urllib.request.Request(f"{base_url}/v1/videos/uploads/{upload_id}")
    token = os.environ.get("REEL_CONTRACT_TOKEN")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            session = json.load(response)
    except (urllib.error.URLError, ValueError):
        return None
    sizes = [p["size_bytes"] for p in session.get("parts", []) if p.get("part_number") == part_number]
    return sizes[0] if sizes else None


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.meta is None or case.meta.phase.name != TestPhase.STATEFUL:
        return
    if case.method.upper() == "POST" and case.path == UPLOADS_PATH and isinstance(case.body, dict):
        case.body.pop("sha256", None)
        return
    if case.method.upper() != "PUT" or case.path != PART_PATH:
        return
    parameters = case.path_parameters or {}
    size = planned_size(case.operation.base_url.rstrip("/"), parameters.get("id"), parameters.get("part"))
    if size is None:
        return
    case.body = bytes(size)
    if case.headers:
        for name in [name for name in case.headers if name.lower() in CHECKSUM_HEADERS]:
            del case.headers[name]
