# Settings -> environment: the inverse of emily.config.Settings' sources. A nested attrset
# { database.hnsw_m = 24; } becomes EMILY_DATABASE__HNSW_M = "24"; secrets never enter the
# environment or the store, only a path: EMILY_DATABASE__DSN_FILE = "%d/database.dsn", where
# %d is systemd's $CREDENTIALS_DIRECTORY filled by LoadCredential.
let
  s = import ./strings.nix;
  prefix = "EMILY_";
  delimiter = "__";

  # Settings whose Python type is SecretStr: they may only arrive as *_FILE credentials.
  # python/tests/nix/test_modules_settings.py checks this list against the pydantic model.
  secretPaths = [
    "database.dsn"
    "database.admin_dsn"
    "redis.url"
    "embedder.api_key"
    "agents.api_token"
    "telemetry.langfuse_public_key"
    "telemetry.langfuse_secret_key"
    "mlflow.password"
    "features.offline_dsn"
    "features.registry_path"
    "features.redis_connection"
    "features.token"
  ];
  # Not secret themselves but able to hold one (a backend's api_key inside the JSON list):
  # allowed as credentials too, so a remote backend's key never enters the store.
  credentialPaths = secretPaths ++ [ "inference.backends" ];

  envName = path: prefix + s.toUpper (builtins.concatStringsSep delimiter path);

  render =
    value:
    if builtins.isBool value then
      (if value then "true" else "false")
    else if builtins.isString value then
      value
    else if builtins.isPath value then
      toString value
    else if builtins.isInt value || builtins.isFloat value || builtins.isList value then
      # pydantic-settings parses lists (and complex values) from JSON.
      builtins.toJSON value
    else
      throw "cannot render ${builtins.typeOf value} as an environment value";

  flatten =
    path: attrs:
    builtins.concatLists (
      map (
        name:
        let
          value = attrs.${name};
          here = path ++ [ name ];
        in
        if value == null then
          [ ]
        else if builtins.isAttrs value && !(value ? outPath) then
          flatten here value
        else
          [
            {
              path = here;
              inherit value;
            }
          ]
      ) (builtins.attrNames attrs)
    );

  dotted = path: builtins.concatStringsSep "." path;
in
rec {
  inherit
    prefix
    delimiter
    secretPaths
    credentialPaths
    envName
    render
    flatten
    ;

  # Paths (dotted) of secret settings that were put into plain settings: modules assert empty.
  secretsIn = settings: builtins.filter (p: builtins.elem p secretPaths) (map (e: dotted e.path) (flatten [ ] settings));

  toEnv =
    settings:
    builtins.listToAttrs (
      map (e: {
        name = envName e.path;
        value = render e.value;
      }) (flatten [ ] settings)
    );

  # secrets: { "database.dsn" = "/run/agenix/emily-dsn"; } (host paths, read by systemd as root).
  credentialId = path: builtins.replaceStrings [ "." ] [ "-" ] path;
  secretEnv =
    secrets:
    builtins.listToAttrs (
      map (p: {
        name = envName (s.splitDots p) + "_FILE";
        value = "%d/${credentialId p}";
      }) (builtins.attrNames secrets)
    );
  loadCredential = secrets: map (p: "${credentialId p}:${secrets.${p}}") (builtins.attrNames secrets);
}
