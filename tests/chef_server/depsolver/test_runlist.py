"""Run-list items to cookbooks, as erchef reads what chef-client posts."""

from chef_server.depsolver.constraints import Version
from chef_server.depsolver.runlist import RunListCookbook, cookbooks_for_run_list


def test_recipes_name_their_cookbook_and_optional_version():
    assert cookbooks_for_run_list(["apache2", "mysql::server", "nginx@1.2.3", "php::fpm@2.0"]) == [
        RunListCookbook("apache2"),
        RunListCookbook("mysql"),
        RunListCookbook("nginx", Version(1, 2, 3)),
        RunListCookbook("php", Version(2, 0, 0)),
    ]


def test_exact_duplicates_are_dropped_but_versioned_items_stay():
    assert cookbooks_for_run_list(["a", "a::default", "b", "a@1.0.0", "a::x@1.0.0", "a"]) == [
        RunListCookbook("a"),
        RunListCookbook("b"),
        RunListCookbook("a", Version(1)),
    ]


def test_items_print_as_dep_selector_solution_constraints():
    assert [str(c) for c in cookbooks_for_run_list(["foo", "bar@2.0"])] == ["(foo >= 0.0.0)", "(bar = 2.0.0)"]


def test_empty_run_list():
    assert cookbooks_for_run_list([]) == []
