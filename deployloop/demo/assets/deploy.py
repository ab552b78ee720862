"""The demo's redeploy trigger: asks the staging simulator to deploy the fix."""

import json
import sys
import urllib.request

request = urllib.request.Request(
    sys.argv[1] + "/_control/deploy",
    data=json.dumps({"fix": True, "delay_s": 2.0}).encode(),
    headers={"Content-Type": "application/json"},
    method="POST",
)
with urllib.request.urlopen(request, timeout=10) as response:
    print(f"deploy requested: HTTP {response.status} {json.loads(response.read())['upcoming']}")
