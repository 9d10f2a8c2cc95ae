"""The device's local S3 store (`bacedge serve --store`): a supervised MinIO or SeaweedFS.

`LocalStore` runs it; `StoreError` says why it cannot; `bucket_name_problem` checks a
bucket name against S3's rules. Clients reach the store through `edge.s3.local_store`.
"""

from edge.store.backends import BACKENDS, StoreError
from edge.store.buckets import bucket_name_problem, check_bucket_name
from edge.store.server import LocalStore

__all__ = ["BACKENDS", "LocalStore", "StoreError", "bucket_name_problem", "check_bucket_name"]
