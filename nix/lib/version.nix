# Version arithmetic with builtins only, so it is testable with a bare nix-instantiate.
let
  # "6.1.55-rc2", "5.15.0-generic" -> [ 6 1 55 ]: the numeric prefix is what feature gates key on;
  # builtins.compareVersions would rank "5.15-rc1" above "5.15".
  numericParts =
    version:
    let
      m = builtins.match "([0-9]+(\\.[0-9]+)*).*" version;
    in
    if m == null then
      throw "not a version: ${version}"
    else
      map builtins.fromJSON (builtins.filter builtins.isString (builtins.split "\\." (builtins.head m)));

  compare =
    a: b:
    let
      pa = numericParts a;
      pb = numericParts b;
      at = l: i: if i < builtins.length l then builtins.elemAt l i else 0;
      n = if builtins.length pa > builtins.length pb then builtins.length pa else builtins.length pb;
      go =
        i:
        if i >= n then
          0
        else if at pa i < at pb i then
          -1
        else if at pa i > at pb i then
          1
        else
          go (i + 1);
    in
    go 0;

  atLeast = version: minimum: compare version minimum >= 0;

  # Cilium's eBPF datapath (and Hubble/Tetragon on top) needs BTF and the helpers of 5.15 LTS.
  ciliumMinKernel = "5.15";
in
{
  inherit
    numericParts
    compare
    atLeast
    ciliumMinKernel
    ;
  ciliumKernelOk = kernelVersion: atLeast kernelVersion ciliumMinKernel;
  ciliumKernelMessage =
    kernelVersion:
    "Cilium (services.emily.observability) needs Linux >= ${ciliumMinKernel} for its eBPF datapath, "
    + "but boot.kernelPackages is ${kernelVersion}; set boot.kernelPackages = pkgs.linuxPackages "
    + "(the release's LTS) or pkgs.linuxPackages_latest, or disable services.emily.observability.cilium.enable.";
}
