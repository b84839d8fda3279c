# llama.cpp for the Tesla P4 (Pascal, sm_61): CUDA 12, since CUDA 13 dropped sm_50..sm_72, and
# kernels compiled only for 6.1 (a smaller, faster build than nixpkgs' default capability list).
# nixpkgs must be instantiated with { allowUnfree = true; cudaCapabilities = [ "6.1" ]; }.
{ pkgs }:
let
  gpu = (import ../nix/lib).gpu;
in
assert pkgs.config.cudaCapabilities or [ ] == gpu.cudaCapabilities "6.1"
  || throw "llama-cpp-p4: instantiate nixpkgs with config.cudaCapabilities = [ \"6.1\" ]";
pkgs.llama-cpp.override {
  cudaSupport = true;
  cudaPackages = pkgs.cudaPackages_12;
}
