//! Dispatch: the permission decision on the parsed call (selection,
//! read-only mode, scopes), the step-up scopes, the call itself through the
//! ledger, and resource reads.

use super::*;

impl Registry {
    /// The tool `name` as `view` allows it.
    pub(super) fn allowed(&self, view: &View, name: &str) -> Result<usize, Refusal> {
        let Some(&i) = self.by_name.get(name) else {
            return Err(Refusal::Unknown);
        };
        if view.callable.contains(i) {
            return Ok(i);
        }
        if view.read_only && !self.entries[i].read_only {
            return Err(Refusal::ReadOnly);
        }
        Err(Refusal::NotSelected)
    }

    /// The scopes calling `name` needs, when stepping up to them could let
    /// it run: `view` allows it, and every scope can be granted. Through
    /// the call tool, the scopes of the tool it calls.
    pub fn step_up_scopes(
        &self,
        view: &View,
        name: &str,
        arguments: Option<&Map<String, Value>>,
    ) -> Option<&[String]> {
        let &i = self.by_name.get(name)?;
        let i = match self.entries[i].runner {
            Runner::Meta(MetaTool::Call) if view.callable.contains(i) => {
                let target = arguments?.get(search::CALL_NAME)?.as_str()?;
                *self.by_name.get(target)?
            }
            _ => i,
        };
        self.grantable_scopes(view, i)
    }

    /// The scopes reading `uri` needs, as [`Self::step_up_scopes`].
    pub fn step_up_scopes_of_resource(&self, view: &View, uri: &str) -> Option<&[String]> {
        let r = self.resources.iter().find(|r| r.def.resource.uri == uri)?;
        self.grantable_scopes(view, r.as_tool?)
    }

    pub(super) fn grantable_scopes(&self, view: &View, i: usize) -> Option<&[String]> {
        let scopes = &self.entries[i].def.scopes;
        (view.callable.contains(i) && scopes.iter().all(|s| self.config.issuable.contains(s)))
            .then_some(scopes.as_slice())
    }

    /// Whether `principal` may run entry `i`: who it runs for (nobody, for
    /// a public tool called with nobody signed in), or the tool error
    /// saying why not.
    pub(super) fn permitted<'p>(
        &self,
        i: usize,
        principal: Result<&'p Principal, &str>,
    ) -> Result<Option<&'p Principal>, Refused> {
        let e = &self.entries[i];
        let principal = match principal {
            Ok(p) => p,
            Err(_) if e.def.public => return Ok(None),
            Err(why) => return Err(Refused(why.to_owned())),
        };
        let missing: Vec<&str> = e
            .def
            .scopes
            .iter()
            .filter(|s| !principal.has_scope(s))
            .map(String::as_str)
            .collect();
        if missing.is_empty() {
            return Ok(Some(principal));
        }
        let ungrantable: Vec<&str> = missing
            .iter()
            .copied()
            .filter(|s| !self.config.issuable.iter().any(|k| k == s))
            .collect();
        Err(Refused(if ungrantable.is_empty() {
            format!(
                "`{}` needs the scope(s) {}, which were not granted; {}",
                e.def.tool.name,
                missing.join(", "),
                self.config.how_to_grant
            )
        } else {
            format!(
                "`{}` needs the scope(s) {}, which this server does not grant to clients; its operator can add them to XMCP_SCOPES (and to XMCP_X_SCOPES)",
                e.def.tool.name,
                ungrantable.join(", ")
            )
        }))
    }

    pub(super) fn refusal(
        &self,
        view: &View,
        name: &str,
        why: Refusal,
    ) -> Result<CallToolResponse, ErrorData> {
        match why {
            Refusal::Unknown => Err(ErrorData::invalid_params(
                format!("unknown tool `{name}`"),
                None,
            )),
            Refusal::ReadOnly => Ok(tool_error(format!(
                "`{name}` is not available: this connection is read-only"
            ))),
            Refusal::NotSelected => Ok(tool_error(match &view.named {
                Some(sets) => format!(
                    "`{name}` is not in the toolsets this connection selected ({}); it is in `{}`",
                    sets.join(", "),
                    self.entries[self.by_name[name]]
                        .def
                        .toolset
                        .as_deref()
                        .unwrap_or("no toolset")
                ),
                None => format!("`{name}` is not available on this connection"),
            })),
        }
    }

    /// Call the tool `name` with `arguments` for `principal` (or the reason
    /// there is none), as `view` allows.
    pub async fn call(
        &self,
        view: &View,
        name: &str,
        arguments: Map<String, Value>,
        principal: Result<&Principal, &str>,
    ) -> Result<CallToolResponse, ErrorData> {
        let i = match self.allowed(view, name) {
            Ok(i) => i,
            Err(why) => return self.refusal(view, name, why),
        };
        let principal = match self.permitted(i, principal) {
            Ok(p) => p,
            Err(refused) => return Ok(refused.into()),
        };
        match self.entries[i].runner {
            Runner::Source(s) => Ok(self.run(i, s, name, arguments, principal).await),
            Runner::Meta(MetaTool::Find) => Ok(search::find(self, view, arguments)),
            Runner::Meta(MetaTool::Describe) => Ok(search::describe(self, view, arguments)),
            Runner::Meta(MetaTool::Call) => {
                let (target, arguments) = match search::call_target(arguments) {
                    Ok(t) => t,
                    Err(refused) => return Ok(refused.into()),
                };
                if self
                    .by_name
                    .get(&target)
                    .is_some_and(|&t| self.meta.contains(t))
                {
                    return Ok(tool_error(format!(
                        "`{target}` is one of the search tools: call it directly"
                    )));
                }
                let called = Box::pin(self.call(
                    view,
                    &target,
                    arguments,
                    principal.ok_or("this request is not authenticated"),
                ))
                .await;
                match called {
                    // An unknown name is the model's mistake in its arguments.
                    Err(e) => Ok(tool_error(e.message.to_string())),
                    ok => ok,
                }
            }
        }
    }

    /// Run entry `i` of source `s`, inside the ledger's layers: made once
    /// (writes), held against the spending caps, settled and audited.
    pub(super) async fn run(
        &self,
        i: usize,
        s: usize,
        name: &str,
        mut arguments: Map<String, Value>,
        principal: Option<&Principal>,
    ) -> CallToolResponse {
        let source = &self.sources[s];
        let once = self.entries[i].def.once;
        let given = if once {
            arguments.remove(IDEMPOTENCY_ARGUMENT)
        } else {
            None
        };
        let (Some(ledger), Some(p)) = (&self.ledger, principal) else {
            return source
                .call(Call {
                    name,
                    arguments,
                    principal,
                })
                .await
                .response;
        };
        let guard = if once {
            match ledger.once(p, name, given, &arguments).await {
                Ok(Once::Go(guard)) => Some(guard),
                Ok(Once::Answered(response)) => return response,
                Err(refused) => return refused.into(),
            }
        } else {
            None
        };
        let hold = match source.estimate(name, &arguments) {
            Some(estimate) => match ledger.hold(p, estimate).await {
                Ok(hold) => Some(hold),
                Err(refused) => {
                    if let Some(guard) = guard {
                        ledger.release_once(guard).await;
                    }
                    return refused.into();
                }
            },
            None => None,
        };
        let Called {
            mut response,
            upstream,
        } = source
            .call(Call {
                name,
                arguments,
                principal,
            })
            .await;
        match hold {
            Some(hold) => ledger.settle(hold, p, name, &upstream, &mut response).await,
            None => ledger.audit(p, name, &upstream).await,
        }
        if let Some(guard) = guard {
            ledger.finish_once(guard, &response).await;
        }
        response
    }

    /// Read the resource `uri` for `principal`, as `view` allows.
    pub async fn read(
        &self,
        view: &View,
        uri: &str,
        principal: &Principal,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let Some(r) = self.resources.iter().find(|r| r.def.resource.uri == uri) else {
            return Err(not_found(uri));
        };
        if let Some(t) = r.as_tool {
            if !view.callable.contains(t) {
                return Err(not_found(uri));
            }
            if let Err(Refused(why)) = self.permitted(t, Ok(principal)) {
                return Err(ErrorData::invalid_request(why, None));
            }
        }
        let source = &self.sources[r.source];
        let Some(ledger) = &self.ledger else {
            return source.read(uri, principal).await.response;
        };
        let hold = match source.estimate_read(uri) {
            Some(estimate) => match ledger.hold(principal, estimate).await {
                Ok(hold) => Some(hold),
                Err(Refused(why)) => return Err(ErrorData::invalid_request(why, None)),
            },
            None => None,
        };
        let read = source.read(uri, principal).await;
        match hold {
            Some(hold) => {
                ledger
                    .settle_read(hold, principal, uri, &read.upstream)
                    .await
            }
            None => ledger.audit(principal, uri, &read.upstream).await,
        }
        read.response
    }
}
