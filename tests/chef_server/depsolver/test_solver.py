"""The depsolver's answers and failures, starting with the cases of pedant's depsolver spec."""

import pytest

from chef_server.depsolver import (
    CookbooksNotFound,
    NoVersionsMatch,
    SolveTimeout,
    Unsatisfiable,
    solve,
)

# The environments pedant's depsolver spec creates.
TEST_ENV = {"qux": "> 4.0.0", "foo": ">= 0.1.0", "bar": "< 4.0.0"}
NO_COOKBOOKS_ENV = {"foo": "= 400.0.0", "bar": "> 400.0.0"}


def failure(universe, pins, run_list, **kwargs):
    with pytest.raises(Exception) as caught:
        solve(universe, pins, run_list, **kwargs)
    return caught.value


# --- pedant: empty and error cases -------------------------------------------------------------


def test_empty_run_list_solves_to_nothing():
    assert solve({"foo": {"1.2.3": {}}}, TEST_ENV, []) == {}


@pytest.mark.parametrize("pins", [{}, TEST_ENV])
def test_non_existent_cookbook(pins):
    err = failure({"foo": {"1.2.3": {}}}, pins, ["this_does_not_exist"])
    assert isinstance(err, CookbooksNotFound) and err.status == 412
    assert err.body() == {"error": [{
        "message": "Run list contains invalid items: no such cookbook this_does_not_exist.",
        "non_existent_cookbooks": ["this_does_not_exist"],
        "cookbooks_with_no_versions": [],
    }]}


def test_cookbook_filtered_out_by_environment():
    err = failure({"foo": {"1.2.3": {}}}, NO_COOKBOOKS_ENV, ["foo"])
    assert isinstance(err, NoVersionsMatch) and err.status == 412
    assert err.body() == {"error": [{
        "message": "Run list contains invalid items: no versions match the constraints on cookbook (foo >= 0.0.0).",
        "non_existent_cookbooks": [],
        "cookbooks_with_no_versions": ["(foo >= 0.0.0)"],
    }]}


def test_two_non_existent_cookbooks():
    err = failure({"foo": {"1.2.3": {}}}, TEST_ENV, ["this_does_not_exist", "also_this_one"])
    assert err.body()["error"][0] == {
        "message": "Run list contains invalid items: no such cookbooks this_does_not_exist, also_this_one.",
        "non_existent_cookbooks": ["this_does_not_exist", "also_this_one"],
        "cookbooks_with_no_versions": [],
    }


def test_run_list_version_that_does_not_exist():
    err = failure({"foo": {"1.2.3": {}}}, TEST_ENV, ["foo@2.0.0"])
    assert err.body()["error"][0] == {
        "message": "Run list contains invalid items: no versions match the constraints on cookbook (foo = 2.0.0).",
        "non_existent_cookbooks": [],
        "cookbooks_with_no_versions": ["(foo = 2.0.0)"],
    }


def test_missing_cookbook_reported_before_missing_version():
    err = failure({"foo": {"1.2.3": {}}}, TEST_ENV, ["this_does_not_exist", "foo@2.0.0"])
    assert isinstance(err, CookbooksNotFound)
    assert err.detail()["non_existent_cookbooks"] == ["this_does_not_exist"]


def test_only_the_unmet_versioned_item_is_reported():
    universe = {"foo": {"1.2.3": {}}, "bar": {"2.0.0": {}}}
    err = failure(universe, TEST_ENV, ["bar@2.0.0", "foo@3.0.0"])
    assert err.detail()["cookbooks_with_no_versions"] == ["(foo = 3.0.0)"]


def test_several_unmet_items_use_the_plural():
    err = failure({"foo": {"1.2.3": {}}, "bar": {"2.0.0": {}}}, {}, ["bar@1.0", "foo@3.0.0"])
    assert err.detail()["message"] == ("Run list contains invalid items: no versions match the constraints on "
                                       "cookbooks (bar = 1.0.0), (foo = 3.0.0).")


# --- pedant: dependency error cases ---------------------------------------------------------------


def test_dependency_that_does_not_exist():
    universe = {"foo": {"1.2.3": {"this_does_not_exist": ">= 0.0.0"}}}
    err = failure(universe, TEST_ENV, ["foo"])
    assert isinstance(err, Unsatisfiable) and err.status == 412
    assert err.body() == {"error": [{
        "message": "Unable to satisfy constraints on package this_does_not_exist, which does not exist, due to "
                   "solution constraint (foo >= 0.0.0). Solution constraints that may result in a constraint on "
                   "this_does_not_exist: [(foo = 1.2.3) -> (this_does_not_exist >= 0.0.0)]",
        "unsatisfiable_run_list_item": "(foo >= 0.0.0)",
        "non_existent_cookbooks": ["this_does_not_exist"],
        "most_constrained_cookbooks": [],
    }]}


def test_dependency_without_a_new_enough_version():
    universe = {"foo": {"1.2.3": {"bar": "> 2.0.0"}}, "bar": {"2.0.0": {}}}
    err = failure(universe, TEST_ENV, ["foo"])
    assert err.detail() == {
        "message": "Unable to satisfy constraints on package bar due to solution constraint (foo >= 0.0.0). "
                   "Solution constraints that may result in a constraint on bar: [(foo = 1.2.3) -> (bar > 2.0.0)]",
        "unsatisfiable_run_list_item": "(foo >= 0.0.0)",
        "non_existent_cookbooks": [],
        "most_constrained_cookbooks": ["bar = 2.0.0 -> []"],
    }


def test_impossible_mutual_dependency():
    universe = {"foo": {"1.2.3": {"bar": "> 2.0.0"}}, "bar": {"2.0.0": {"foo": "> 3.0.0"}}}
    err = failure(universe, TEST_ENV, ["foo"])
    assert err.detail() == {
        "message": "Unable to satisfy constraints on package bar due to solution constraint (foo >= 0.0.0). "
                   "Solution constraints that may result in a constraint on bar: [(foo = 1.2.3) -> (bar > 2.0.0)]",
        "unsatisfiable_run_list_item": "(foo >= 0.0.0)",
        "non_existent_cookbooks": [],
        "most_constrained_cookbooks": ["bar = 2.0.0 -> [(foo > 3.0.0)]"],
    }


# --- pedant: success cases -------------------------------------------------------------------------


def test_dependencies_are_included():
    universe = {
        "foo": {"1.0.0": {}},
        "bar": {"2.0.0": {"foo": "> 0.0.0"}},
        "baz": {"3.0.0": {}},
        "quux": {"4.0.0": {"bar": "= 2.0.0", "baz": "= 3.0.0"}},
    }
    assert solve(universe, {}, ["quux"]) == {"quux": "4.0.0", "bar": "2.0.0", "foo": "1.0.0", "baz": "3.0.0"}


def test_datestamp_versions():
    universe = {"datestamp": {"1.2.20130730201745": {}}}
    assert solve(universe, {"datestamp": ">= 1.2.20130730200000"}, ["datestamp"]) == {
        "datestamp": "1.2.20130730201745"}


# --- preferences ---------------------------------------------------------------------------------


def test_newest_version_wins():
    universe = {"app": {"1.0.0": {}, "1.10.0": {}, "1.2.0": {}, "0.9.9": {}}}
    assert solve(universe, {}, ["app"]) == {"app": "1.10.0"}


def test_environment_pin_limits_versions():
    universe = {"app": {"1.0.0": {}, "1.5.0": {}, "2.0.0": {}}}
    assert solve(universe, {"app": "~> 1.0"}, ["app"]) == {"app": "1.5.0"}
    assert solve(universe, {"app": "< 1.5"}, ["app::server"]) == {"app": "1.0.0"}


def test_pins_apply_to_dependencies():
    universe = {"app": {"1.0.0": {"lib": ">= 1.0"}}, "lib": {"1.0.0": {}, "2.0.0": {}, "3.0.0": {}}}
    assert solve(universe, {"lib": "<= 2.0"}, ["app"]) == {"app": "1.0.0", "lib": "2.0.0"}


def test_run_list_version_is_honoured():
    universe = {"app": {"1.0.0": {"lib": "~> 1.0"}, "2.0.0": {"lib": "~> 2.0"}},
                "lib": {"1.0.0": {}, "1.4.2": {}, "2.0.0": {}}}
    assert solve(universe, {}, ["app@1.0.0"]) == {"app": "1.0.0", "lib": "1.4.2"}
    assert solve(universe, {}, ["app::default@2.0.0"]) == {"app": "2.0.0", "lib": "2.0.0"}


def test_dependency_forces_an_older_version():
    universe = {"web": {"1.0.0": {"lib": "~> 1.2.0"}}, "lib": {"1.2.0": {}, "1.2.9": {}, "1.3.0": {}}}
    assert solve(universe, {}, ["web"]) == {"web": "1.0.0", "lib": "1.2.9"}


def test_run_list_cookbooks_at_newest_come_before_dependencies():
    # Newest app needs old lib; old app allows newest lib: the run-list cookbook wins.
    universe = {"app": {"1.0.0": {"lib": ">= 2.0"}, "2.0.0": {"lib": "< 2.0"}}, "lib": {"1.0.0": {}, "2.0.0": {}}}
    assert solve(universe, {}, ["app"]) == {"app": "2.0.0", "lib": "1.0.0"}


def test_a_conflict_holds_back_only_what_it_must():
    # Every c needs d < 2, so d and b (whose newest needs d >= 2) go back; c stays newest.
    universe = {
        "top": {"1.0.0": {"b": ">= 0.0", "c": ">= 0.0"}},
        "b": {"1.0.0": {"d": "< 2.0"}, "2.0.0": {"d": ">= 2.0"}},
        "c": {"1.0.0": {"d": "< 2.0"}, "2.0.0": {"d": "< 2.0"}},
        "d": {"1.0.0": {}, "2.0.0": {}},
    }
    assert solve(universe, {}, ["top"]) == {"top": "1.0.0", "b": "1.0.0", "d": "1.0.0", "c": "2.0.0"}


def test_version_labels_come_back_as_stored():
    assert solve({"app": {"1.2": {}, "1.1.9": {}}}, {}, ["app"]) == {"app": "1.2"}


def test_transitive_chain_and_cycles():
    universe = {
        "a": {"1.0.0": {"b": ">= 1.0"}},
        "b": {"1.0.0": {"c": ">= 1.0"}, "1.1.0": {"c": ">= 1.1"}},
        "c": {"1.0.0": {"a": "= 1.0.0"}, "1.1.0": {"a": "= 1.0.0"}},
    }
    assert solve(universe, {}, ["a"]) == {"a": "1.0.0", "b": "1.1.0", "c": "1.1.0"}


def test_only_needed_cookbooks_are_returned():
    universe = {"app": {"1.0.0": {"old": ">= 1.0"}, "2.0.0": {"new": ">= 1.0"}},
                "old": {"1.0.0": {}}, "new": {"1.0.0": {}}, "other": {"1.0.0": {}}}
    assert solve(universe, {}, ["app"]) == {"app": "2.0.0", "new": "1.0.0"}


# --- conflicts -----------------------------------------------------------------------------------


def test_transitive_conflict_names_the_first_item_that_breaks():
    universe = {
        "web": {"1.0.0": {"lib": "~> 1.0"}},
        "db": {"1.0.0": {"lib": ">= 2.0"}},
        "ok": {"1.0.0": {}},
        "lib": {"1.0.0": {}, "2.0.0": {}},
    }
    err = failure(universe, {}, ["ok", "web", "ok::other", "db"])
    assert isinstance(err, Unsatisfiable)
    assert err.unsatisfiable_run_list_item == "(db >= 0.0.0)"
    assert err.most_constrained_cookbooks == ["lib = 2.0.0 -> []"]
    assert err.non_existent_cookbooks == []
    assert err.message.startswith("Unable to satisfy constraints on package lib due to solution constraint "
                                  "(db >= 0.0.0). Solution constraints that may result in a constraint on lib: ")
    assert "[(web = 1.0.0) -> (lib ~> 1.0.0)]" in err.message
    assert "[(db = 1.0.0) -> (lib >= 2.0.0)]" in err.message


def test_pin_excluding_what_a_dependency_needs():
    universe = {"app": {"1.0.0": {"lib": ">= 2.0"}}, "lib": {"1.0.0": {}, "2.0.0": {}}}
    err = failure(universe, {"lib": "< 2.0"}, ["app"])
    assert isinstance(err, Unsatisfiable)
    assert err.most_constrained_cookbooks == ["lib = 1.0.0 -> []"]


def test_dependency_on_a_cookbook_the_environment_filters_out_entirely():
    universe = {"app": {"1.0.0": {"lib": ">= 1.0"}}, "lib": {"1.0.0": {}}}
    err = failure(universe, {"lib": "> 5.0"}, ["app"])
    assert err.non_existent_cookbooks == []  # it exists in the organization
    assert err.most_constrained_cookbooks == ["lib = "]
    assert "package lib, which does not exist, due to" in err.message


def test_paths_through_versions_that_differ_are_collapsed():
    universe = {
        "foo": {"1.0.0": {"bar": "> 2.0"}, "1.1.0": {"bar": "> 2.0", "baz": ">= 0.0"}},
        "bar": {"2.0.0": {}},
        "baz": {"1.0.0": {}},
    }
    err = failure(universe, {}, ["foo"])
    assert err.message.endswith("constraint on bar: [(foo = {1.1.0,1.0.0}) -> (bar > 2.0.0)]")


def test_time_limit():
    universe = {"app": {"1.0.0": {"lib": ">= 2.0"}, "2.0.0": {"lib": "< 2.0"}}, "lib": {"1.0.0": {}, "2.0.0": {}}}
    err = failure(universe, {}, ["app", "lib"], timeout=1e-9)
    assert isinstance(err, SolveTimeout)
    assert err.status == 412  # erchef: resolution_timeout is a precondition failure
    assert err.body() == {"error": [{"message": "unable to solve dependencies in alotted time",
                                     "non_existent_cookbooks": [], "most_constrained_cookbooks": []}]}
