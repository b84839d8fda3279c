# Normalises the JSON the Python rule table exports into { <backend> = { min_capability; reason; }; }.
# Accepted shapes: { backends = [ { backend|name; min_capability|min_compute_capability; reason } ] },
# a bare list of those, or an attrset keyed by backend.
json:
let
  entries =
    if builtins.isList json then
      json
    else if json ? backends then
      json.backends
    else if json ? rules then
      json.rules
    else
      json;
  field = e: names: default:
    let present = builtins.filter (n: e ? ${n}) names;
    in if present == [ ] then default else e.${builtins.head present};
  normCap =
    c:
    if c == null then
      null
    else if builtins.isList c then
      "${toString (builtins.elemAt c 0)}.${toString (builtins.elemAt c 1)}"
    else if builtins.isString c then
      c
    else
      builtins.toJSON c;
  norm = name: e: {
    min_capability = normCap (field e [ "min_capability" "min_compute_capability" "minimum_capability" "min_cc" ] null);
    reason = field e [ "reason" "why" "note" ] "${name}: see emily doctor --rules-json";
  };
  nameOf = e: builtins.replaceStrings [ "_" ] [ "-" ] (field e [ "backend" "name" "kind" ] "?");
in
if builtins.isList entries then
  builtins.listToAttrs (map (e: { name = nameOf e; value = norm (nameOf e) e; }) entries)
else
  builtins.mapAttrs norm entries
