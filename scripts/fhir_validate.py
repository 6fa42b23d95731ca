"""Validates FHIR R4 resources with fhir.resources' R4B models (the export tests run it).

Reads NDJSON on stdin: one resource a line (a Bundle is one resource; its entries are
validated by the Bundle model, and again one by one so an error names the entry). Prints one
line per invalid resource and exits 1 if there was any, else prints the count and exits 0.
"""

import json
import sys

from fhir.resources.R4B import get_fhir_model_class


def validate(resource, where, errors):
    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except Exception as e:  # pydantic's ValidationError, or an unknown resourceType
        errors.append(f"{where}: {e}")


def main():
    errors = []
    count = 0
    for n, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        resource = json.loads(line)
        validate(resource, f"line {n} ({resource.get('resourceType')})", errors)
        count += 1
        for i, entry in enumerate(resource.get("entry", [])):
            validate(entry["resource"], f"line {n} entry {i}", errors)
            count += 1
    for e in errors:
        print(e)
    if errors:
        sys.exit(1)
    print(f"{count} valid resources")


if __name__ == "__main__":
    main()
