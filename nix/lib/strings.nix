# String helpers nixpkgs' lib would give us; builtins only so the lib runs on a bare nix.
let
  lower = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
  upper = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];
in
{
  toUpper = builtins.replaceStrings lower upper;
  toLower = builtins.replaceStrings upper lower;
  concatSep = sep: list: builtins.concatStringsSep sep list;
  splitDots = s: builtins.filter builtins.isString (builtins.split "\\." s);
  min = a: b: if a < b then a else b;
  max = a: b: if a > b then a else b;
}
