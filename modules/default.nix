# All Emily modules; each can also be imported on its own (they share ./common.nix).
{
  imports = [
    ./common.nix
    ./memory.nix
    ./inference.nix
    ./agents.nix
    ./mlops.nix
    ./features.nix
    ./observability.nix
    ./storage.nix
  ];
}
