"""The customer's deal statistics (交易次数, 累计交易金额, 首次交易, 最近交易), recomputed from the
deals themselves whenever one of them changes, so create, update, delete, restore and merge all
come out right without counting increments.

What counts as a deal (交易), chosen so that nothing is counted twice:

- a **contract** (合同) in a deal state (default ``signed`` 已签订 and ``completed`` 履行完毕), on its
  signing date, for its amount;
- an **order placed directly** (销售订单 without a contract) in a deal state (default ``confirmed``,
  ``delivered``, ``completed``), on its order date, for its total. An order of a contract is the
  delivery of that contract, not a deal of its own.

crm.ini can name other states: ``crm.sales.deal_contract_states``, ``crm.sales.deal_order_states``
(blank-separated state values).
"""
from decimal import Decimal

import sqlalchemy as sa

from .common import row

CONTRACT_STATES = ("signed", "completed")
ORDER_STATES = ("confirmed", "delivered", "completed")
DEAL_ENTITIES = ("contract", "sales_order")


def states(runtime, kind):
    """The deal states of ``contract`` or ``sales_order`` (setting, else the defaults)."""
    setting = {"contract": "crm.sales.deal_contract_states", "sales_order": "crm.sales.deal_order_states"}[kind]
    default = CONTRACT_STATES if kind == "contract" else ORDER_STATES
    value = runtime.settings.get(setting)
    return tuple((value or "").replace(",", " ").split()) or default


def _sources(ctx):
    """(table, amount column, date column, extra where) per kind of deal."""
    contract, order = ctx.entity("contract").table, ctx.entity("sales_order").table
    return [(contract, contract.c.amount, contract.c.signed_on, [contract.c.status.in_(states(ctx.runtime, "contract"))]),
            (order, order.c.total, order.c.ordered_on, [order.c.status.in_(states(ctx.runtime, "sales_order")),
                                                        order.c.contract_id.is_(None)])]


def statistics(ctx, customer_id):
    """{deal_count, deal_amount, first_deal_on, last_deal_on} of one customer, from its deals."""
    count, amount, dates = 0, Decimal(0), []
    for table, amount_column, date_column, where in _sources(ctx):
        stmt = sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(amount_column), 0), sa.func.min(date_column),
                         sa.func.max(date_column)).where(table.c.customer_id == customer_id, table.c.deleted_at.is_(None), *where)
        n, total, first, last = ctx.session.execute(stmt).one()
        count += n
        amount += Decimal(total or 0)
        dates += [d for d in (first, last) if d is not None]
    return {"deal_count": count, "deal_amount": amount, "first_deal_on": min(dates) if dates else None,
            "last_deal_on": max(dates) if dates else None}


def refresh(ctx, *customer_ids):
    """Write the statistics of these customers (derived values: no version bump, no audit). The
    customer's row is locked before its deals are read, so two transactions changing deals of
    one customer take turns and the second counts the first's."""
    for customer_id in sorted({c for c in customer_ids if c}):
        row(ctx, "customer", customer_id, lock=True)
        ctx.set_derived("customer", customer_id, statistics(ctx, customer_id))

