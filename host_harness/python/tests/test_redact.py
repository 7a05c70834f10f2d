"""No secrets in what dfplugin prints: reprs of provider objects, exception messages, logs.

Nothing here contacts a storage service: the S3 URIs point at a loopback port nobody
listens on (``http://127.0.0.1:1``) with dummy credentials, the repr tests never open the
table, and conftest.py sets ``AWS_EC2_METADATA_DISABLED=true`` for the process so that no
client ever asks the cloud metadata address for credentials.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Dict

import pytest

import dfplugin
from dfplugin.objects import ConfigExtensionExport, TableProviderExport
from dfplugin.redact import MASK, is_secret_key, redact_json, redact_options, redact_text, redact_url

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYSECRET"
TOKEN = "FwoGZXIvYXdzEXAMPLE-SESSION-TOKEN"
KEY_ID = "AKIAEXAMPLEKEYID1234"
URL_PASSWORD = "hunter2-url-password"
SIGNATURE = "9f86d081884c7d659a2feaa0c55ad015"
SECRETS = (SECRET, TOKEN, KEY_ID, URL_PASSWORD, SIGNATURE)

S3_URI = f"s3://backup-user:{URL_PASSWORD}@bucket/tables/events"


def _storage_options() -> Dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_SESSION_TOKEN": TOKEN,
        "AWS_ALLOW_HTTP": "true",
    }


def _clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"secret {secret!r} shown in: {text}"


def test_metadata_service_is_disabled_for_the_tests() -> None:
    assert os.environ.get("AWS_EC2_METADATA_DISABLED") == "true"


@pytest.mark.parametrize(
    "name, secret",
    [
        ("AWS_SECRET_ACCESS_KEY", True),
        ("aws_session_token", True),
        ("AWS_ACCESS_KEY_ID", True),
        ("access_key_id", True),
        ("azure_storage_account_key", True),
        ("azure_client_secret", True),
        ("google_service_account_key", True),
        ("google_application_credentials", True),
        ("password", True),
        ("X-Amz-Signature", True),
        ("X-Amz-Credential", True),
        ("X-Amz-Security-Token", True),
        ("sig", True),
        ("AWS_REGION", False),
        ("aws_endpoint_url", False),
        ("endpoint", False),
        ("table_uri", False),
        ("allow_http", False),
        ("version", False),
    ],
)
def test_secret_key_names(name: str, secret: bool) -> None:
    assert is_secret_key(name) is secret


@pytest.mark.parametrize(
    "url, expected",
    [
        (f"s3://user:{URL_PASSWORD}@bucket/t", "s3://***@bucket/t"),
        (f"https://{TOKEN}@example.com/repo", "https://***@example.com/repo"),
        (
            f"https://bucket.s3.amazonaws.com/t/_delta_log/0.json?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={KEY_ID}%2F20250101"
            f"&X-Amz-Security-Token={TOKEN}&X-Amz-Signature={SIGNATURE}&X-Amz-Expires=60",
            "https://bucket.s3.amazonaws.com/t/_delta_log/0.json?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=***"
            "&X-Amz-Security-Token=***&X-Amz-Signature=***&X-Amz-Expires=60",
        ),
        (
            f"https://acct.blob.core.windows.net/c/t?sv=2022-11-02&sig={SIGNATURE}&token={TOKEN}#frag",
            "https://acct.blob.core.windows.net/c/t?sv=2022-11-02&sig=***&token=***#frag",
        ),
        ("s3://bucket/path/with@sign", "s3://bucket/path/with@sign"),  # '@' in the path is no userinfo
        ("file:///tmp/table", "file:///tmp/table"),
        ("/tmp/table", "/tmp/table"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert redact_text(f"cannot open '{url}': refused") == f"cannot open '{expected}': refused"


def test_redact_options_and_json() -> None:
    options = {"table_uri": S3_URI, "version": 3, "storage_options": _storage_options()}
    shown = redact_options(options)
    assert shown["storage_options"]["AWS_SECRET_ACCESS_KEY"] == MASK
    assert shown["storage_options"]["AWS_SESSION_TOKEN"] == MASK
    assert shown["storage_options"]["AWS_ACCESS_KEY_ID"] == MASK
    assert shown["storage_options"]["AWS_REGION"] == "us-east-1"
    assert shown["storage_options"]["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert shown["table_uri"] == "s3://***@bucket/tables/events" and shown["version"] == 3
    assert options["storage_options"]["AWS_SECRET_ACCESS_KEY"] == SECRET  # the input is not changed
    text = redact_json(json.dumps(options))
    _clean(text)
    assert json.loads(text) == shown
    # not JSON (a near-miss): quoted values of secret-looking names are still masked
    broken = json.dumps(options)[:-2]
    _clean(redact_json(broken))
    _clean(redact_json("aws_secret_access_key = '" + SECRET + "', token: \"" + TOKEN + '"'))


class _FakeLibrary:
    path = "/opt/plugins/libcodeanatomy_plugin.so"


def test_repr_of_provider_objects_hides_secrets() -> None:
    options = json.dumps({"table_uri": S3_URI, "storage_options": _storage_options()})
    provider = TableProviderExport(_FakeLibrary(), "delta", options)  # a recipe: nothing is opened
    for text in (repr(provider), str(provider), f"{provider}", repr([provider])):
        _clean(text)
    assert "AWS_SECRET_ACCESS_KEY" in repr(provider) and "us-east-1" in repr(provider) and "s3://***@bucket" in repr(provider)
    config = ConfigExtensionExport(_FakeLibrary(), "codeanatomy", json.dumps({"store.password": URL_PASSWORD, "span.line_base": 1}))
    _clean(repr(config))
    assert "span.line_base" in repr(config)
    assert "options=None" in repr(ConfigExtensionExport(_FakeLibrary(), "codeanatomy", None))


def test_plugin_objects_and_errors_hide_secrets(plugin: dfplugin.Plugin, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="dfplugin")
    options = {"table_uri": S3_URI, "storage_options": _storage_options()}
    # A real provider recipe of the plugin, built without opening the table.
    provider = TableProviderExport(plugin.library, "delta", json.dumps(options))
    _clean(repr(provider))
    # The plugin rejects the unknown key while parsing the options, before any I/O.
    with pytest.raises(dfplugin.PluginError) as e:
        plugin.table_provider("delta", dict(options, bogus_option=1))
    assert "bogus_option" in str(e.value)
    _clean(str(e.value))
    _clean(repr(e.value))
    _clean(e.value.plugin_message or "")
    # Arguments refused before any plugin call.
    with pytest.raises(ValueError) as v:
        plugin.delta_table(S3_URI, version=1, timestamp="2024-01-01T00:00:00Z", storage_options=_storage_options())
    _clean(str(v.value))
    with pytest.raises(TypeError) as t:
        plugin.delta_table(S3_URI, storage_options=dict(_storage_options(), AWS_SECRET_ACCESS_KEY=[SECRET]))
    _clean(str(t.value))
    assert "AWS_SECRET_ACCESS_KEY" in str(t.value)
    with pytest.raises(dfplugin.PluginConfigError) as c:
        plugin.validate_options({"codeanatomy.no_such_password": URL_PASSWORD})
    _clean(str(c.value))
    _clean(caplog.text)
