{
  description = "Emily Sovereign: placeholder, filled in by the NixOS issue";
  outputs = { self }: { };
}
