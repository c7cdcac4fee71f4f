from mesaguard.items import WorkItem, bundled_hadoop, split_items


def test_split_is_deterministic_disjoint_and_complete() -> None:
    items = bundled_hadoop().items
    first, second = split_items(items), split_items(list(items))
    assert first == second
    keys = [set(i.key for i in part) for part in (first.train, first.calibration, first.test)]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    assert sum(map(len, keys)) == len(items)
    assert abs(len(first.train) / len(items) - 0.6) < 0.03


def test_an_items_part_does_not_depend_on_the_other_items() -> None:
    items = list(bundled_hadoop().items)
    full = split_items(items)
    subset = split_items(items[::3] + [WorkItem(key="NEW-1", title="new")])
    assert {i.key for i in subset.test} - {"NEW-1"} <= {i.key for i in full.test}


def test_a_different_salt_gives_a_different_split() -> None:
    items = bundled_hadoop().items
    assert split_items(items).test != split_items(items, salt="other").test
