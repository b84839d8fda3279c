# Listen addresses: which ones only this host can reach (a service without authentication may
# bind those and nothing else).
{
  isLoopback =
    host:
    builtins.elem host [
      "localhost"
      "::1"
      "[::1]"
    ]
    || builtins.match "127\\.[0-9]+\\.[0-9]+\\.[0-9]+" host != null;
}
