"""Small steps of `make bench` (lambda-bench) that boto3 and the standard library do well.

    helper.py provision            create in moto (AWS_ENDPOINT_URL, default account) what the
                                   handlers need: the notebook table, exactly as
                                   crates/aws/src/dynamo_store.rs create_table makes it, the AMI
                                   parameter, the Slack parameters and the instance profile
                                   (named by crates/local/src/deployment.rs, which lambda-bench
                                   passes in the environment as NBFLEET_LOCAL_*)
    helper.py item-size NAME       the DynamoDB item size in bytes of notebook NAME's record
    helper.py zip-size FILE...     the size of each FILE zipped alone as `bootstrap`, with
                                   zipfile's deflate, as `sam deploy` zips a CodeUri folder
    helper.py sign-slack SECRET    reads a request body on stdin; prints the timestamp and the
                                   Slack v0 signature of it, one a line

Each prints JSON or plain lines on stdout for lambda-bench to read.
"""

import hashlib
import hmac
import io
import json
import os
import sys
import time
import zipfile

# The local deployment's names: crates/local/src/deployment.rs, passed in by lambda-bench.
LOCAL = {k[len("NBFLEET_LOCAL_"):]: v for k, v in os.environ.items() if k.startswith("NBFLEET_LOCAL_")}


def template_table():
    """The notebook table's keys and indexes from template.yaml (its CloudFormation tags ignored)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "template.yaml")
    with open(root) as f:
        props = yaml.load(f, Loader=Loader)["Resources"]["NotebookTable"]["Properties"]
    return {k: props[k] for k in ("AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes")}


def provision():
    import boto3

    ddb = boto3.client("dynamodb")
    if LOCAL["TABLE"] not in ddb.list_tables()["TableNames"]:
        # The table exactly as template.yaml declares it (keys and indexes), so the bench never
        # runs on a table the stack would not have.
        ddb.create_table(TableName=LOCAL["TABLE"], BillingMode="PAY_PER_REQUEST", **template_table())
        ddb.update_time_to_live(
            TableName=LOCAL["TABLE"], TimeToLiveSpecification={"AttributeName": "expires_at", "Enabled": True}
        )
    ssm = boto3.client("ssm")
    ssm.put_parameter(Name=LOCAL["AMI_PARAMETER"], Value=LOCAL["SEEDED_AMI"], Type="String", Overwrite=True)
    ssm.put_parameter(Name=LOCAL["SLACK_SIGNING_SECRET_PARAMETER"], Value=LOCAL["SLACK_SIGNING_SECRET"], Type="SecureString", Overwrite=True)
    ssm.put_parameter(
        Name=LOCAL["SLACK_WEBHOOK_PARAMETER"], Value="https://127.0.0.1:9/bench-webhook", Type="SecureString", Overwrite=True
    )
    iam = boto3.client("iam")
    try:
        iam.create_instance_profile(InstanceProfileName=LOCAL["INSTANCE_PROFILE"])
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    print(json.dumps({"table": LOCAL["TABLE"], "ami_parameter": LOCAL["AMI_PARAMETER"]}))


def attr_size(v):
    """DynamoDB's item-size rules: strings and binaries by length, numbers by digits, 3 bytes
    of overhead per list or map plus 1 per element."""
    (kind, x), = v.items()
    if kind == "S":
        return len(x.encode())
    if kind == "N":
        return (len(x.strip("-").replace(".", "")) + 1) // 2 + 1
    if kind == "B":
        return len(x)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(attr_size({kind[0]: e}) for e in x)
    if kind == "L":
        return 3 + sum(1 + attr_size(e) for e in x)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + attr_size(e) for k, e in x.items())
    raise ValueError(kind)


def item_size(name):
    import boto3

    item = boto3.client("dynamodb").get_item(TableName=LOCAL["TABLE"], Key={"name": {"S": name}, "sk": {"S": "notebook"}})
    item = item.get("Item")
    if item is None:
        sys.exit(f"helper: no record {name!r}")
    print(sum(len(k.encode()) + attr_size(v) for k, v in item.items()))


def zip_size(paths):
    for p in paths:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.write(p, "bootstrap")
        print(len(buf.getvalue()))


def sign_slack(secret):
    body = sys.stdin.buffer.read()
    ts = str(int(time.time()))
    mac = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    print(ts)
    print("v0=" + mac)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"provision": lambda: provision(), "item-size": lambda: item_size(args[0]),
     "zip-size": lambda: zip_size(args), "sign-slack": lambda: sign_slack(args[0])}[cmd]()
