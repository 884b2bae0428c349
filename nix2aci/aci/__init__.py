"""The appc ACI format: building an image (:mod:`.build`, in the Nix sandbox), its archive rules and
reading it in one bounded pass (:mod:`.members`), and unpacking it for ``nix2aci run`` (:mod:`.unpack`)."""
