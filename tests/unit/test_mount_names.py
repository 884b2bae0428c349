"""The names of a thin image's mount points: readable, and apart from each other and from the user's mounts."""

from __future__ import annotations

import pytest

from nix2aci.aci.build import store_mount_names
from nix2aci.errors import SpecError

GLIBC = "/nix/store/gxqsfdawjy7slkf4kvcspx8yyhifkxry-glibc-9.99"
HELLO = "/nix/store/zm9saj3yl6bib5dnf5yyw1yf9al37sgw-hello-1.0"
OTHER_HELLO = "/nix/store/0abcdefghijklmnpqrsvwxyz01234567-hello-1.0"


def test_a_name_is_the_store_paths_name_and_its_hash_only_where_two_would_meet():
    assert store_mount_names([GLIBC, HELLO], set()) == {GLIBC: "glibc-9-99", HELLO: "hello-1-0"}
    names = store_mount_names([OTHER_HELLO, GLIBC, HELLO], {"glibc-9-99"})
    assert names == {OTHER_HELLO: "hello-1-0-0abcdefg", GLIBC: "glibc-9-99-gxqsfdaw", HELLO: "hello-1-0-zm9saj3y"}


def test_a_users_mount_that_takes_even_the_hashed_name_is_an_error_naming_it():
    with pytest.raises(SpecError, match=f"mounts.hello-1-0-zm9saj3y: takes the name of the mount point of {HELLO}"):
        store_mount_names([GLIBC, HELLO], {"hello-1-0", "hello-1-0-zm9saj3y"})
