"""Fails unless the document at the given URL is a valid OpenAPI 3.1 document."""

import json
import sys
import urllib.request

from openapi_spec_validator import OpenAPIV31SpecValidator

with urllib.request.urlopen(sys.argv[1]) as response:
    document = json.load(response)
if not str(document.get("openapi", "")).startswith("3.1."):
    sys.exit(f"openapi is {document.get('openapi')!r}, expected 3.1.x")
errors = list(OpenAPIV31SpecValidator(document).iter_errors())
for error in errors:
    print(f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}", file=sys.stderr)
if errors:
    sys.exit(f"{len(errors)} OpenAPI 3.1 violations")
print(f"valid OpenAPI {document['openapi']}: {len(document['paths'])} paths")
