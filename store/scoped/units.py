"""Organization units, API keys and units' webhook receivers, as one caller sees them."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from organizations import ROOT_ID, OrgError, Unit, UnitKind, check_new_unit
from store import endpoints as endpoint_rows
from store.endpoints import Endpoint
from store.interface import ApiKey
from store.scoped.base import NotInScopeError, ScopeBase


class UnitRecords(ScopeBase):
    def rules_of(self, org_id: int) -> dict[str, Any]:
        """A unit's own threshold overrides (`{}` for none); NotInScopeError outside."""
        unit = self.unit(org_id)
        if unit is None:
            raise NotInScopeError(f"no org {org_id}")
        return dict(json.loads(self._s.unit_rules().get(unit.path, "{}")))

    def set_rules(self, org_id: int, rules: dict[str, Any]) -> dict[str, Any]:
        """Replaces a unit's overrides (validated by the caller); `{}` removes them."""
        with self.transaction("set unit rules"):
            before = self.rules_of(org_id)
            text = json.dumps(rules, sort_keys=True, separators=(",", ":"))
            self._s.put_unit_rules(org_id, text, self._clock_ms())
            self._audit("org.rules", f"org:{org_id}", org_id, {"rules": before},
                        {"rules": rules})  # fmt: skip
        return rules

    def units(self) -> list[Unit]:
        return self._s.list_orgs(self.scope)

    def create_unit(self, name: str, kind: UnitKind, parent_id: int | None) -> Unit:
        """Raises NotInScopeError (the parent is not visible) or OrgError (not allowed)."""
        with self.transaction("create org"):
            if parent_id is None:
                if kind is not UnitKind.TENANT:
                    raise OrgError("parent", f"a {kind} needs a parent unit")
                parent = self._s.get_org(ROOT_ID)
            else:
                parent = self.unit(parent_id)
            if parent is None:
                raise NotInScopeError(f"parent: no org {parent_id}")
            check_new_unit(kind, parent, self.scope)
            unit = self._s.add_org(name, kind, parent, self._clock_ms())
            self._audit("org.create", f"org:{unit.id}", unit.id, None, unit)
        return unit

    def keys(self) -> list[ApiKey]:
        return self._s.list_api_keys(self.scope)

    def key(self, name: str) -> ApiKey | None:
        return next((k for k in self.keys() if k.name == name), None)

    def create_key(self, key: ApiKey) -> bool:
        """Stores a key of a unit in the subtree; False when the name is taken (anywhere)."""
        with self.transaction("create api key"):
            org = self.target_org(key.org)
            taken = self._s._run(
                "read api key", "SELECT org_id FROM api_keys WHERE name = ?", (key.name,)
            ).rows
            if taken and not self.visible(int(taken[0][0])):
                raise NotInScopeError(f"name: no key {key.name!r} here")
            record = replace(key, org=org)
            created = self._s.create_api_key(record)
            if created:
                self._audit("key.create", f"key:{key.name}", org, None, record)
        return created

    def delete_key(self, name: str) -> bool:
        with self.transaction("delete api key"):
            found = self.key(name)
            if found is None or not self._s.delete_api_key(name):
                return False
            self._audit("key.delete", f"key:{name}", found.org, found, None)
        return True

    def endpoints(self) -> list[Endpoint]:
        return endpoint_rows.find(self._s, self.scope)

    def add_endpoint(self, url: str, secret: str, org: int | None) -> Endpoint | None:
        """A receiver of the alerts of unit `org`'s subtree (default the caller's unit);
        None when that unit already has the URL."""
        with self.transaction("add webhook endpoint"):
            target = self.target_org(org)
            added = endpoint_rows.add(self._s, target, url, secret, self.actor, self._clock_ms())
            if added is not None:
                self._audit("webhook.create", f"webhook:{added.id}", target, None, added)
        return added

    def remove_endpoint(self, endpoint_id: int) -> bool:
        with self.transaction("remove webhook endpoint"):
            found = endpoint_rows.find(self._s, self.scope, endpoint_id)
            if not found or not endpoint_rows.remove(self._s, endpoint_id):
                return False
            self._audit("webhook.delete", f"webhook:{endpoint_id}", found[0].org, found[0], None)
        return True
