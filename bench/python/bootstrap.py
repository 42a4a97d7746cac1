"""The Python baseline of `make bench` (lambda-bench): a minimal custom-runtime Lambda.

It does at init what an nbfleet handler does at init (imports boto3, builds the ec2, ssm and
dynamodb clients, and the lambda client too when NBFLEET_BENCH_LAMBDA_CLIENT=1, as the slack
function does), then polls the Lambda Runtime API with urllib and answers each event after one
real DynamoDB call (GetItem on the notebook table), so that its peak RSS covers a used client.
Not deployed anywhere: it is the yardstick the Rust handlers' cold start and memory are
compared with.
"""

import json
import os
import urllib.request

import boto3

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
TABLE = os.environ["NBFLEET_TABLE"]  # set by lambda-bench, from crates/local/src/deployment.rs

session = boto3.session.Session()
ec2 = session.client("ec2")
ssm = session.client("ssm")
dynamodb = session.client("dynamodb")
if os.environ.get("NBFLEET_BENCH_LAMBDA_CLIENT") == "1":
    lambda_ = session.client("lambda")


def handle(event):
    item = dynamodb.get_item(TableName=TABLE, Key={"name": {"S": "bench"}, "sk": {"S": "notebook"}})
    return {"found": "Item" in item, "keys": sorted(event)[:5] if isinstance(event, dict) else []}


while True:
    with urllib.request.urlopen(API + "/invocation/next") as r:
        request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(r.read())
    try:
        body, path = json.dumps(handle(event)).encode(), "/response"
    except Exception as e:  # reported to the Runtime API, as a Lambda runtime does
        body, path = json.dumps({"errorType": type(e).__name__, "errorMessage": str(e)}).encode(), "/error"
    urllib.request.urlopen(
        urllib.request.Request(API + "/invocation/" + request_id + path, data=body, method="POST")
    ).read()
