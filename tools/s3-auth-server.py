#!/usr/bin/env python3
"""A local S3 server that checks credentials, for the tests of where `stele mirror` takes them.

    .build-moto/bin/python3 tools/s3-auth-server.py

The server `tools/s3-server.sh` starts accepts any signature. This one runs moto's server in
this process on a free port of 127.0.0.1, creates an IAM user allowed everything, its access key
and a bucket with Object Lock, then turns on moto's request authentication (every request's
SigV4 signature is checked against the user's key) and prints one line:

    PORT ACCESS_KEY_ID SECRET_ACCESS_KEY BUCKET

It exits when its standard input closes, so that it never outlives the test that started it.
"""
import json
import sys

import boto3
from moto import settings
from moto.core import ActionAuthenticatorMixin
from moto.server import ThreadedMotoServer

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
_, port = server.get_host_and_port()
endpoint = f"http://127.0.0.1:{port}"
setup = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "setup", "aws_secret_access_key": "setup"}

iam = boto3.client("iam", **setup)
iam.create_user(UserName="stele-mirror")
iam.put_user_policy(UserName="stele-mirror", PolicyName="all",
                    PolicyDocument=json.dumps({"Version": "2012-10-17",
                                               "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="stele-mirror")["AccessKey"]
bucket = "stele-auth"
boto3.client("s3", **setup).create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)

# From here on every request must be signed with the user's key.
settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
ActionAuthenticatorMixin.request_count = 0
print(port, key["AccessKeyId"], key["SecretAccessKey"], bucket, flush=True)
sys.stdin.read()
server.stop()
