"""Progress through a sentence's lexical constraints: fairseq's ``token_generation_constraints``.

A constraint is a non-empty sequence of target ids that must appear contiguously
in the output. ``OrderedState`` meets them in the listed order (anything may come
between two of them); ``UnorderedState`` in any order, tracked on a trie of the
constraints. A state is immutable: ``advance(token)`` returns the next one.
``bank`` (constraint tokens generated so far) is what the constrained search
sorts beams by; ``finished`` is whether every constraint is met.
"""

from __future__ import annotations

from collections import Counter


class OrderedState:
    """Position ``state`` in the concatenation of the constraints (-1: nothing matched yet)."""

    def __init__(self, tokens: tuple[int, ...], ends: tuple[bool, ...], state: int = -1) -> None:
        self.sequence, self.ends, self.state = tokens, ends, state

    @classmethod
    def create(cls, constraints: list[list[int]]) -> "OrderedState":
        tokens = tuple(t for c in constraints for t in c)
        ends = tuple(i == len(c) - 1 for c in constraints for i in range(len(c)))
        return cls(tokens, ends)

    @property
    def distinct_tokens(self) -> int:
        return len(set(self.sequence))

    @property
    def bank(self) -> int:
        return self.state + 1

    @property
    def num_completed(self) -> int:
        return sum(self.ends[: self.state + 1])

    @property
    def is_root(self) -> bool:
        return self.state == -1

    @property
    def finished(self) -> bool:
        return self.state + 1 == len(self.sequence)

    def next_tokens(self) -> set[int]:
        tokens = set()
        if self.state > 0:
            tokens.add(self.sequence[0])
        if not self.finished:
            tokens.add(self.sequence[self.state + 1])
        return tokens

    def advance(self, token: int) -> "OrderedState":
        if self.finished:
            return self
        if self.sequence[self.state + 1] == token:
            return OrderedState(self.sequence, self.ends, self.state + 1)
        if self.ends[self.state]:  # between constraints (or before the first: ends[-1]): anything goes
            return self
        # mid-constraint and off track: restart, possibly on the first token
        return OrderedState(self.sequence, self.ends, 0 if token == self.sequence[0] else -1)


class _Node:
    """A trie node: ``terminal`` constraints end here; ``count`` constraints pass through or end below."""

    def __init__(self, token: int | None = None, parent: "_Node | None" = None) -> None:
        self.token, self.parent = token, parent
        self.children: dict[int, _Node] = {}
        self.terminal = 0
        self.count = 0

    def add(self, sequence: list[int]) -> None:
        node = self
        for token in sequence:
            node = node.children.setdefault(int(token), _Node(int(token), node))
        node.terminal += 1
        while node is not None:
            node.count += 1
            node = node.parent

    def tokens(self) -> set[int]:
        found, stack = set(), list(self.children.values())
        while stack:
            node = stack.pop()
            found.add(node.token)
            stack.extend(node.children.values())
        return found


class UnorderedState:
    """A node of the constraint trie plus, per node, how often it was generated and completed."""

    def __init__(self, node: _Node, root: _Node, generated: Counter, completed: Counter) -> None:
        self.node, self.root, self.generated, self.completed = node, root, generated, completed

    @classmethod
    def create(cls, constraints: list[list[int]]) -> "UnorderedState":
        root = _Node()
        for sequence in constraints:
            root.add(sequence)
        return cls(root, root, Counter(), Counter())

    def _moved_to(self, node: _Node) -> "UnorderedState":
        generated = Counter(self.generated)
        if node is not self.root:
            generated[node] += 1
        return UnorderedState(node, self.root, generated, Counter(self.completed))

    @property
    def distinct_tokens(self) -> int:
        return len(self.root.tokens())

    @property
    def bank(self) -> int:
        return sum(self.generated.values())

    @property
    def num_completed(self) -> int:
        """Constraints met, counting the one that ends at the current node."""
        pending_here = bool(self.node.terminal) and self.completed[self.node] < self.node.terminal
        return sum(self.completed.values()) + pending_here

    @property
    def finished(self) -> bool:
        return self.root.count == self.num_completed

    @property
    def is_root(self) -> bool:
        return self.node is self.root

    def next_tokens(self) -> set[int]:
        tokens = set(self.root.children)
        if self.node is not self.root:
            tokens |= set(self.node.children)
        return tokens

    def advance(self, token: int) -> "UnorderedState":
        child = self.node.children.get(token)
        if child is not None and self.generated[child] < child.count:
            return self._moved_to(child)
        # off the trie: back to the root (or straight into the root's child for this token)
        restart = self.root.children.get(token)
        if restart is not None and self.generated[restart] < restart.count:
            next_state = self._moved_to(restart)
        else:
            next_state = self._moved_to(self.root)
        node = self.node
        while node is not self.root:  # the deepest completed constraint on the way back counts as met
            if node.terminal and self.completed[node] < node.terminal:
                next_state.completed[node] += 1
                break
            next_state.generated[node] -= 1
            node = node.parent
        return next_state


def initial_state(constraints: list[list[int]], order: str):
    return (OrderedState if order == "ordered" else UnorderedState).create(constraints)
