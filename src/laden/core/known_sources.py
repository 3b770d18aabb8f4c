"""Every source laden has, as the rest of laden knows it before loading one: its name, the
schemes of its addresses, where its code is, and the options a user gives it.

This table is the one place a source is declared. The registry routes addresses by these
schemes and imports a source's module only when an address needs it (`laden get https://...`
never loads boto3, nor the modules of the other sources). Each option here becomes, with no
other list to keep in step: a command-line flag (`--s3-endpoint-url URL`, with this help), a
settings-file key, a manifest connection field, and the key the source reads from
`DownloadOptions.source_settings` (or `secrets`). It lives in `core` because `Config` (the
settings file's keys) and the faces all read it, and none of them may import the sources.

Adding a source: its module in `laden.sources` (a `Source` whose `known` is its entry here)
and one `KnownSource` below, with its tests.
"""

from __future__ import annotations

# Plain classes with slots, not dataclasses or NamedTuples: this module is read at every start,
# and each of those costs half a millisecond or more to define.


class SourceOption:
    """Something a user sets for a source: an endpoint, a region, a credential or the file
    holding one.

    Attributes:
        key: the one name it has: the key in `DownloadOptions.source_settings` (or `secrets`)
            and in the settings file; `--key-with-dashes` on the command line.
        metavar: the flag's value (URL, FILE, ...); None: no flag (a secret given as itself
            on a command line would show in `ps`).
        help: the flag's help.
        secret: a credential as itself: it goes into `DownloadOptions.secrets`, never
            journalled, and never into the settings file (the `*_file` option naming the file
            that holds it does).
        manifest: the connection field of a manifest item that sets it (`endpoint_url`).
    """

    __slots__ = ("key", "metavar", "help", "secret", "manifest")

    def __init__(self, key: str, metavar: str | None = None, help: str = "", *,
                 secret: bool = False, manifest: str | None = None) -> None:
        self.key = key
        self.metavar = metavar
        self.help = help
        self.secret = secret
        self.manifest = manifest

    @property
    def flag(self) -> str | None:
        return None if self.metavar is None else "--" + self.key.replace("_", "-")

    @property
    def in_settings_file(self) -> bool:
        return self.metavar is not None and not self.secret

    def __repr__(self) -> str:
        return f"SourceOption({self.key!r})"


class KnownSource:
    """One source, as declared below.

    Attributes:
        name: short name shown in the queue and kept in the journal: http, ftp, s3, gs, az, hf.
        schemes: the schemes of its addresses.
        code: `module:class` of its `Source`, imported when an address first needs it.
        options: what a user may set for it.
        web_hosts: host suffixes of http(s) addresses that belong to this source (Azure's
            blob endpoints) rather than to the web.
        manifest_type: the `type` of its items in a manifest.
        containers: for an object store, the manifest field that lists its buckets or
            containers (its items then name `{scheme}://{container}/{key}`).
        uploader: `module:class` of its `sources.uploads.Uploader`, made with its `Source`,
            when laden can upload to it.
    """

    __slots__ = ("name", "schemes", "code", "options", "web_hosts", "manifest_type",
                 "containers", "uploader")

    def __init__(self, name: str, schemes: tuple[str, ...], code: str, *,
                 options: tuple[SourceOption, ...] = (), web_hosts: tuple[str, ...] = (),
                 manifest_type: str | None = None, containers: str | None = None,
                 uploader: str | None = None) -> None:
        self.name = name
        self.schemes = schemes
        self.code = code
        self.options = options
        self.web_hosts = web_hosts
        self.manifest_type = manifest_type
        self.containers = containers
        self.uploader = uploader

    def __repr__(self) -> str:
        return f"KnownSource({self.name!r})"


# In the order of `laden get --help` and of a manifest's known types.
KNOWN_SOURCES: tuple[KnownSource, ...] = (
    KnownSource(
        "s3", ("s3",), "laden.sources.s3:S3Source", manifest_type="s3", containers="buckets",
        uploader="laden.sources.s3_upload:S3Uploader",
        options=(
            SourceOption("s3_endpoint_url", "URL", "S3-compatible endpoint such as MinIO "
                         "(default: AWS, or AWS_ENDPOINT_URL)", manifest="endpoint_url"),
            SourceOption("s3_region", "REGION", "S3 region (default: from the AWS "
                         "configuration)", manifest="region"),
            SourceOption("s3_profile", "NAME", "profile in ~/.aws/config to take credentials "
                         "from"),
            SourceOption("s3_access_key_id", "ID", "S3 access key id (not stored)", secret=True,
                         manifest="access_key_id"),
            SourceOption("s3_access_key_id_file", "FILE", "read the S3 access key id from FILE"),
            SourceOption("s3_secret_key", secret=True, manifest="secret_key"),
            SourceOption("s3_secret_key_file", "FILE", "read the S3 secret access key from FILE"),
            SourceOption("s3_session_token", secret=True),
            SourceOption("s3_session_token_file", "FILE", "read an S3 session token from FILE"),
        ),
    ),
    KnownSource(
        "gs", ("gs",), "laden.sources.gcs:GcsSource", manifest_type="gcs", containers="buckets",
        uploader="laden.sources.gcs_upload:GcsUploader",
        options=(
            SourceOption("gcs_endpoint_url", "URL", "Google Cloud Storage endpoint, e.g. an "
                         "emulator (default: STORAGE_EMULATOR_HOST, or Google)",
                         manifest="endpoint_url"),
            SourceOption("gcs_credentials_file", "FILE", "Google service-account or user "
                         "credentials JSON (default: application default credentials)",
                         manifest="application_credentials_file"),
            # Kaiwo's manifests name a project; reading objects needs none.
            SourceOption("gcs_project", manifest="project"),
        ),
    ),
    KnownSource(
        "az", ("az",), "laden.sources.azure:AzureBlobSource", manifest_type="azure-blob",
        containers="containers",
        uploader="laden.sources.azure_upload:AzureBlobUploader",
        web_hosts=(".blob.core.windows.net", ".blob.core.chinacloudapi.cn",
                   ".blob.core.usgovcloudapi.net"),
        options=(
            SourceOption("azure_connection_string", secret=True, manifest="connection_string"),
            SourceOption("azure_account_url", "URL", "the account of az:// addresses, "
                         "https://ACCOUNT.blob.core.windows.net", manifest="account_url"),
            SourceOption("azure_connection_string_file", "FILE", "read an Azure storage "
                         "connection string from FILE"),
            SourceOption("azure_account_key", secret=True, manifest="account_key"),
            SourceOption("azure_account_key_file", "FILE", "read the Azure storage account key "
                         "from FILE"),
            SourceOption("azure_sas_token", secret=True, manifest="sas_token"),
            SourceOption("azure_sas_token_file", "FILE", "read an Azure SAS token from FILE"),
        ),
    ),
    KnownSource(
        "hf", ("hf",), "laden.sources.hf:HfSource", manifest_type="hf",
        uploader="laden.sources.hf_upload:HfUploader",
        options=(
            SourceOption("hf_endpoint", "URL", "Hugging Face Hub endpoint (default: "
                         "HF_ENDPOINT, or huggingface.co)", manifest="endpoint_url"),
            SourceOption("hf_token", secret=True, manifest="token"),
            SourceOption("hf_token_file", "FILE", "read the Hugging Face token from FILE "
                         "(default: HF_TOKEN or your hub login)"),
        ),
    ),
    KnownSource("http", ("http", "https"), "laden.sources.http:HttpSource", manifest_type="http"),
    KnownSource("ftp", ("ftp", "ftps"), "laden.sources.ftp:FtpSource", manifest_type="ftp",
                uploader="laden.sources.ftp_upload:FtpUploader"),
    KnownSource(
        "azureml", ("azureml",), "laden.sources.azureml:AzureMLSource", manifest_type="azureml",
        uploader="laden.sources.azureml_upload:AzureMLUploader",
        options=(
            SourceOption("azureml_workspace", "NAME", "Azure ML workspace of "
                         "azureml://datastores/... and azureml://jobs/... addresses, or its "
                         "resource id (default: the Azure ML job's, or a config.json here or "
                         "above)", manifest="workspace"),
            SourceOption("azureml_resource_group", "NAME", "the Azure ML workspace's resource "
                         "group", manifest="resource_group"),
            SourceOption("azureml_subscription", "ID", "the Azure ML workspace's subscription",
                         manifest="subscription"),
            SourceOption("azureml_arm_endpoint", "URL", "Azure Resource Manager endpoint "
                         "(default: LADEN_AZUREML_ARM_ENDPOINT, or the cloud's)",
                         manifest="arm_endpoint"),
            SourceOption("azureml_storage_endpoint", "URL", "reach datastores' storage accounts "
                         "at URL, where {account} is the account name (default: "
                         "LADEN_AZUREML_STORAGE_ENDPOINT, or the datastore's)",
                         manifest="storage_endpoint"),
        ),
    ),
)

SETTINGS_FILE_KEYS = frozenset(
    option.key for source in KNOWN_SOURCES for option in source.options
    if option.in_settings_file)
"""The sources' keys a settings file may hold (each a default for every download)."""


def known_source(name: str) -> KnownSource:
    """The entry named `name` (a source's module finds its own with this)."""
    for source in KNOWN_SOURCES:
        if source.name == name:
            return source
    raise KeyError(name)
