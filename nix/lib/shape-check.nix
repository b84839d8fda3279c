# Structural checks of the flake that need no nixpkgs:
#  - every declared input is an argument of `outputs` (and every argument is an input),
#  - every file in modules/ is imported by modules/default.nix,
#  - the c220g5 host imports modules/default.nix.
# nix-instantiate --eval --strict --json nix/lib/shape-check.nix -> { problems = [ ... ]; ... }
let
  root = ../..;
  flake = import (root + "/flake.nix");
  declared = builtins.attrNames flake.inputs;
  consumed = builtins.filter (n: n != "self") (builtins.attrNames (builtins.functionArgs flake.outputs));
  missing = list: other: builtins.filter (x: !(builtins.elem x other)) list;

  moduleDir = root + "/modules";
  moduleFiles = builtins.filter (n: builtins.match ".*\\.nix" n != null && n != "default.nix") (
    builtins.attrNames (builtins.readDir moduleDir)
  );
  imported = map (p: baseNameOf (toString p)) (import (moduleDir + "/default.nix")).imports;

  # The host is a module function: give it just enough (lazily) to read its `imports`.
  host = import (root + "/hosts/c220g5.nix") {
    config = { };
    pkgs = { };
    lib = {
      optional = cond: x: if cond then [ x ] else [ ];
      optionals = cond: xs: if cond then xs else [ ];
    };
  };
  hostImports = map toString host.imports;
  defaultModule = toString (moduleDir + "/default.nix");

  problems =
    map (i: "flake input '${i}' is declared but not consumed by outputs") (missing declared consumed)
    ++ map (i: "outputs takes '${i}' but no such input is declared") (missing consumed declared)
    ++ map (m: "modules/${m} is not imported by modules/default.nix") (missing moduleFiles imported)
    ++ map (m: "modules/default.nix imports missing file ${m}") (missing imported moduleFiles)
    ++ (if builtins.elem defaultModule hostImports then [ ] else [ "hosts/c220g5.nix does not import modules/default.nix" ]);
in
{
  inherit
    declared
    consumed
    moduleFiles
    problems
    ;
}
