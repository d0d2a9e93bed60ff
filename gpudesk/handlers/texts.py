"""Every sentence the desk says, in Chinese and English: one table, looked up by key.

Handlers never write user-visible literals; they call `say(lang, key, **values)`. A test checks
that every key has both languages and the same placeholders in each.
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")

TEXTS: dict[str, dict[Lang, str]] = {
    # -- help and errors ------------------------------------------------------------------
    "help.title": {
        "en": "gpudesk reads GPU offers posted here and finds counterparties. Commands:",
        "zh": "gpudesk 读取群里的 GPU 买卖信息并撮合对手方。命令：",
    },
    "help.settings": {
        "en": "This group: language {language} · match replies {matches} · readings from {scope}"
        " · weekly digest {digest}.",
        "zh": "本群设置：语言 {language} · 撮合回复 {matches} · 行情范围 {scope}"
        " · 每周周报 {digest}。",
    },
    "setting.on": {"en": "on", "zh": "开"},
    "setting.off": {"en": "off", "zh": "关"},
    "setting.lang.zh": {"en": "Chinese", "zh": "中文"},
    "setting.lang.en": {"en": "English", "zh": "英文"},
    "setting.scope.all": {"en": "every group", "zh": "所有群"},
    "setting.scope.group": {"en": "this group", "zh": "本群"},
    "help.footer": {
        "en": "Post an offer as usual, e.g. “WTS 16x H100 SXM Beijing $2.10/GPU/hr”.",
        "zh": "照常发帖即可，例如「出 H100 8卡 10台 北京 月租7.5w/台」。",
    },
    "error.unknown_command": {
        "en": "Unknown command {command}. Send /help for the list.",
        "zh": "没有 {command} 这个命令，发 /help 查看命令列表。",
    },
    "error.need_model": {
        "en": "Which GPU? For example: {example}",
        "zh": "请写明型号，例如：{example}",
    },
    "error.unknown_model": {
        "en": "I don't know the GPU “{query}”. Try one of: {models}",
        "zh": "不认识型号「{query}」。可用型号：{models}",
    },
    "error.bad_deal": {
        "en": "“{value}” is neither rent nor sale. For example: {example}",
        "zh": "「{value}」不是租赁或出售，例如：{example}",
    },
    "error.need_id": {
        "en": "Which offer? Give its number, e.g. {example}. /mine lists yours.",
        "zh": "请给出信息编号，例如 {example}。发 /mine 查看你的信息。",
    },
    "error.no_offer": {
        "en": "There is no open offer #{id}. /mine lists yours.",
        "zh": "没有编号为 #{id} 的有效信息。发 /mine 查看你的信息。",
    },
    "error.not_yours": {
        "en": "Offer #{id} is not yours: only its poster or a bot admin can change it.",
        "zh": "信息 #{id} 不是你发的：只有发布者或机器人管理员可以修改。",
    },
    "error.admin_only": {
        "en": "Only group admins can use {command}.",
        "zh": "只有群管理员可以使用 {command}。",
    },
    "error.bad_lang": {
        "en": "Choose zh or en, e.g. /lang en.",
        "zh": "请选择 zh 或 en，例如 /lang zh。",
    },
    "error.bad_scope": {
        "en": "Choose all (every group) or group (this group only), e.g. /scope group.",
        "zh": "请选择 all（所有群）或 group（仅本群），例如 /scope group。",
    },
    "error.slow_down": {
        "en": "Too many commands, {name}: try again in a minute.",
        "zh": "{name}，命令太频繁了，请一分钟后再试。",
    },
    "error.too_long": {
        "en": "That message is too long for me to read ({size} characters; the limit is {limit}).",
        "zh": "消息太长，无法读取（{size} 字，上限 {limit} 字）。",
    },
    "error.internal": {
        "en": "Sorry, something went wrong on my side; the operator has the details.",
        "zh": "抱歉，机器人内部出错，已记录日志。",
    },
    # -- commands -------------------------------------------------------------------------
    "cmd.help": {"en": "what I can do", "zh": "使用说明"},
    "cmd.price": {"en": "market pulse of a GPU: /price H100 [rent|sale]", "zh": "某型号行情"},
    "cmd.market": {"en": "every GPU with activity, in one table", "zh": "全部型号行情一览"},
    "cmd.book": {"en": "best asks and bids: /book H100 [rent|sale]", "zh": "买卖盘口"},
    "cmd.match": {"en": "counterparties for my open offers", "zh": "为我的信息找对手方"},
    "cmd.mine": {"en": "my open offers", "zh": "我的有效信息"},
    "cmd.cancel": {"en": "withdraw my offer: /cancel 12", "zh": "撤回信息：撤单 12"},
    "cmd.filled": {"en": "mark my offer done: /filled 12", "zh": "标记成交：成交 12"},
    "cmd.lang": {"en": "group language: /lang zh|en (admins)", "zh": "设置群语言 (管理员)"},
    "cmd.pause": {"en": "stop match replies here (admins)", "zh": "暂停本群撮合回复 (管理员)"},
    "cmd.resume": {"en": "resume match replies here (admins)", "zh": "恢复本群撮合回复 (管理员)"},
    "cmd.scope": {
        "en": "readings from all groups or this one: /scope all|group (admins)",
        "zh": "行情范围：所有群或本群 (管理员)",
    },
    # -- answers --------------------------------------------------------------------------
    "lang.set": {"en": "This group now speaks English.", "zh": "本群已切换为中文。"},
    "pause.done": {
        "en": "Match replies are off in this group. /resume turns them back on. The weekly"
        " digest still comes; /digest off stops it.",
        "zh": "本群已暂停撮合回复，发 /resume 恢复。每周周报照常发送，发 /digest off 关闭。",
    },
    "resume.done": {"en": "Match replies are on again.", "zh": "本群已恢复撮合回复。"},
    "scope.all": {
        "en": "Readings here now cover every group.",
        "zh": "本群行情现覆盖所有群。",
    },
    "scope.group": {
        "en": "Readings here now cover this group only.",
        "zh": "本群行情现仅统计本群。",
    },
    "cancel.done": {"en": "Offer #{id} withdrawn.", "zh": "信息 #{id} 已撤回。"},
    "filled.done": {
        "en": "Offer #{id} marked as done. Congratulations!",
        "zh": "信息 #{id} 已标记成交，恭喜！",
    },
    "mine.none": {
        "en": "You have no open offers. Post one and I will keep it for {days} days.",
        "zh": "你目前没有有效信息。发帖后我会保留 {days} 天。",
    },
    "mine.title": {"en": "Your open offers:", "zh": "你的有效信息："},
    "mine.line": {
        "en": "#{id} {summary} · posted {when} · until {until}",
        "zh": "#{id} {summary} · 发布于 {when} · 有效至 {until}",
    },
    "match.none": {
        "en": "No counterparties for your open offers yet.",
        "zh": "你的信息暂时没有匹配的对手方。",
    },
    "match.title": {
        "en": "Counterparties for your #{id} ({summary}):",
        "zh": "你的 #{id}（{summary}）可匹配：",
    },
    "match.line": {
        "en": "{rank}. {name} in {chat}, {ago}: {summary}",
        "zh": "{rank}. {name}（{chat}，{ago}）：{summary}",
    },
    "price.none": {
        "en": "No {gpu} offers in the last {days} days.",
        "zh": "近 {days} 天没有 {gpu} 的信息。",
    },
    "price.title": {
        "en": "{gpu} {deal} · last {days} days{scope}",
        "zh": "{gpu} {deal} · 近 {days} 天{scope}",
    },
    "price.parties": {
        "en": "{sellers} sellers · {buyers} buyers → {reading}",
        "zh": "卖方 {sellers} 家 · 买方 {buyers} 家 → {reading}",
    },
    "price.asks": {
        "en": "Asks: median {median} (p25 {p25}, p75 {p75}), best {best}",
        "zh": "卖价：中位 {median}（p25 {p25}，p75 {p75}），最低 {best}",
    },
    "price.bids": {
        "en": "Bids: median {median} (p25 {p25}, p75 {p75}), best {best}",
        "zh": "买价：中位 {median}（p25 {p25}，p75 {p75}），最高 {best}",
    },
    "price.spread": {"en": "Spread: {spread}", "zh": "买卖价差：{spread}"},
    "price.wow": {
        "en": "Median ask {change} week on week",
        "zh": "卖价中位数周环比 {change}",
    },
    "price.qty": {
        "en": "{offered} GPUs offered · {wanted} wanted · {posts} posts",
        "zh": "供应 {offered} 卡 · 需求 {wanted} 卡 · 共 {posts} 条",
    },
    "price.this_group": {"en": " (this group)", "zh": "（本群）"},
    "market.none": {
        "en": "No offers in the last {days} days.",
        "zh": "近 {days} 天没有任何信息。",
    },
    "market.title": {
        "en": "Market · last {days} days{scope} (sellers/buyers, median ask · bid)",
        "zh": "行情 · 近 {days} 天{scope}（卖方/买方，卖价中位 · 买价中位）",
    },
    "market.line": {
        "en": "{gpu} {deal}: {sellers}/{buyers} · {ask} · {bid} · {reading}",
        "zh": "{gpu} {deal}：{sellers}/{buyers} · {ask} · {bid} · {reading}",
    },
    "book.none": {
        "en": "No open {gpu} {deal} offers.",
        "zh": "目前没有 {gpu} {deal} 的有效信息。",
    },
    "book.title": {"en": "{gpu} {deal} order book", "zh": "{gpu} {deal} 盘口"},
    "book.asks": {"en": "Asks (lowest first):", "zh": "卖盘（价低在前）："},
    "book.bids": {"en": "Bids (highest first):", "zh": "买盘（价高在前）："},
    "book.line": {
        "en": "#{id} {price} · {qty} · {place} · {name}",
        "zh": "#{id} {price} · {qty} · {place} · {name}",
    },
    "book.empty_side": {"en": "(none)", "zh": "（无）"},
    # -- words ----------------------------------------------------------------------------
    "side.sell": {"en": "sell", "zh": "出"},
    "side.buy": {"en": "buy", "zh": "收"},
    "deal.rent": {"en": "rent", "zh": "租赁"},
    "deal.sale": {"en": "sale", "zh": "出售"},
    "reading.everyone_selling": {
        "en": "everyone selling, few buying",
        "zh": "卖的多，买的少",
    },
    "reading.sellers_outnumber": {"en": "sellers outnumber buyers", "zh": "卖方多于买方"},
    "reading.balanced": {"en": "balanced", "zh": "供需平衡"},
    "reading.buyers_outnumber": {"en": "buyers outnumber sellers", "zh": "买方多于卖方"},
    "reading.everyone_buying": {
        "en": "everyone buying, few selling",
        "zh": "买的多，卖的少",
    },
    "reading.none": {"en": "no parties", "zh": "无人报价"},
    "unit.gpu_hour": {"en": "/GPU-h", "zh": "/卡时"},
    "unit.gpu": {"en": "/GPU", "zh": "/卡"},
    "per.gpu_hour": {"en": "/GPU-h", "zh": "/卡时"},
    "per.gpu_month": {"en": "/GPU/month", "zh": "/卡/月"},
    "per.gpu_year": {"en": "/GPU/year", "zh": "/卡/年"},
    "per.server_hour": {"en": "/server-h", "zh": "/台/时"},
    "per.server_month": {"en": "/server/month", "zh": "/台/月"},
    "per.server_year": {"en": "/server/year", "zh": "/台/年"},
    "per.gpu": {"en": "/GPU", "zh": "/卡"},
    "per.server": {"en": "/server", "zh": "/台"},
    "qty.gpus": {"en": "{n} GPUs", "zh": "{n} 卡"},
    "qty.servers": {"en": "{n}×{per}-GPU servers", "zh": "{n} 台 × {per} 卡"},
    "qty.unknown": {"en": "qty n/a", "zh": "数量未注明"},
    "price.unknown": {"en": "price on request", "zh": "价格私聊"},
    "place.unknown": {"en": "place n/a", "zh": "地点未注明"},
    "ago.minutes": {"en": "{n} min ago", "zh": "{n} 分钟前"},
    "ago.hours": {"en": "{n} h ago", "zh": "{n} 小时前"},
    "ago.days": {"en": "{n} d ago", "zh": "{n} 天前"},
    "chat.private": {"en": "a private chat", "zh": "私聊"},
    "value.none": {"en": "n/a", "zh": "无"},
    # -- weekly digest (issue 7) ------------------------------------------------------------
    "cmd.digest": {
        "en": "the weekly digest, now; /digest off|on stops or restarts it here (admins)",
        "zh": "立即发送行情周报；周报 关/开 停止或恢复本群每周周报 (管理员)",
    },
    "digest.switch.off": {
        "en": "The weekly digest is off in this group. /digest on turns it back on;"
        " /digest still shows it any time.",
        "zh": "本群已关闭每周行情周报，发 /digest on 重新开启；发 /digest 仍可随时查看。",
    },
    "digest.switch.on": {
        "en": "The weekly digest is on in this group.",
        "zh": "本群已开启每周行情周报。",
    },
    "error.bad_digest": {
        "en": "Send /digest for the digest now, /digest off to stop the weekly digest in this"
        " group, /digest on to start it again.",
        "zh": "发 /digest 立即查看周报，发 /digest off（周报 关）关闭本群每周周报，"
        "发 /digest on（周报 开）重新开启。",
    },
    "digest.title": {
        "en": "GPU market weekly {week}{scope} · {start} – {end}",
        "zh": "GPU 行情周报 {week}{scope} · {start} – {end}",
    },
    "digest.headline": {"en": "{reading}: {ratio}{lead}.", "zh": "{reading}：{ratio}{lead}。"},
    "digest.ratio.sellers": {"en": "{ratio} sellers per buyer", "zh": "卖方是买方的 {ratio} 倍"},
    "digest.ratio.buyers": {"en": "{ratio} buyers per seller", "zh": "买方是卖方的 {ratio} 倍"},
    "digest.ratio.one_side": {
        "en": "{sellers} sellers, {buyers} buyers",
        "zh": "卖方 {sellers} 家，买方 {buyers} 家",
    },
    "digest.lead": {
        "en": ", median {gpu} {deal} ask {move} week on week",
        "zh": "，{gpu} {deal}卖价中位数周环比{move}",
    },
    "digest.move.up": {"en": "up {change}", "zh": "上涨 {change}"},
    "digest.move.down": {"en": "down {change}", "zh": "下跌 {change}"},
    "digest.move.flat": {"en": "unchanged", "zh": "持平"},
    "digest.totals": {
        "en": "Sellers: {sellers} · buyers: {buyers} · posts: {posts} · matches made: {matches}",
        "zh": "卖方 {sellers} 家 · 买方 {buyers} 家 · 信息 {posts} 条 · 撮合 {matches} 次",
    },
    "digest.models": {
        "en": "By model (sell · buy: posts/parties):",
        "zh": "分型号（卖 · 买：条数/家数）：",
    },
    "digest.model": {
        "en": "{gpu} {deal} · sell {sell_posts}/{sellers} · buy {buy_posts}/{buyers} · {reading}",
        "zh": "{gpu} {deal} · 卖 {sell_posts}/{sellers} · 买 {buy_posts}/{buyers} · {reading}",
    },
    "digest.model.prices": {
        "en": "  median ask {ask} · bid {bid}",
        "zh": "  卖价中位 {ask} · 买价中位 {bid}",
    },
    "digest.model.prices_wow": {
        "en": "  median ask {ask} ({change} w/w) · bid {bid}",
        "zh": "  卖价中位 {ask}（周环比 {change}）· 买价中位 {bid}",
    },
    "digest.models.more": {"en": "…and {n} more models", "zh": "……另有 {n} 个型号"},
    "digest.lowest_asks": {"en": "Lowest asks:", "zh": "最低卖价："},
    "digest.highest_bids": {"en": "Highest bids:", "zh": "最高买价："},
    "digest.largest_lots": {"en": "Largest lots:", "zh": "最大批量："},
    "digest.offer": {
        "en": "  {model} {deal} {price} · {qty} · {place} · {name}",
        "zh": "  {model} {deal} {price} · {qty} · {place} · {name}",
    },
    "digest.lot": {
        "en": "  {side} {model} {deal} {qty} · {price} · {place} · {name}",
        "zh": "  {side} {model} {deal} {qty} · {price} · {place} · {name}",
    },
    "digest.matches": {"en": "Matches made: {n}. The best:", "zh": "本周撮合 {n} 次，最优："},
    "digest.match": {
        "en": "  {gpu} {deal}: {seller} asks {ask} ↔ {buyer} bids {bid}",
        "zh": "  {gpu} {deal}：{seller} 出 {ask} ↔ {buyer} 收 {bid}",
    },
    "digest.quiet": {
        "en": "No offers from {start} to {end}: nothing to sum up.",
        "zh": "{start} 至 {end} 没有任何买卖信息，暂无周报。",
    },
    "chart.title": {"en": "GPU market {week}", "zh": "GPU 行情 {week}"},
    "chart.asks": {
        "en": "Median ask, {deal} ({unit}), last {weeks} weeks",
        "zh": "近 {weeks} 周卖价中位数 · {deal}（{unit}）",
    },
    "chart.parties": {"en": "Sellers and buyers this week", "zh": "本周卖方与买方家数"},
    "chart.sellers": {"en": "sellers", "zh": "卖方"},
    "chart.buyers": {"en": "buyers", "zh": "买方"},
    # -- market truth (issue 11): the week's pulse by listings, and /explain ----------------------
    "price.title_week": {
        "en": "{gpu} {deal} · week {week}{scope}",
        "zh": "{gpu} {deal} · {week} 周{scope}",
    },
    "price.none_week": {
        "en": "Nobody has a {gpu} listing standing in week {week}.",
        "zh": "{week} 周没有在挂的 {gpu} 信息。",
    },
    "price.raw": {
        "en": "Posts this week: sell {sell_posts} by {sell_posters} posters,"
        " buy {buy_posts} by {buy_posters}",
        "zh": "本周帖子：卖 {sell_posts} 条（{sell_posters} 人），"
        "买 {buy_posts} 条（{buy_posters} 人）",
    },
    "market.title_week": {
        "en": "Market · week {week}{scope} (sellers/buyers, median ask · bid)",
        "zh": "行情 · {week} 周{scope}（卖方/买方，卖价中位 · 买价中位）",
    },
    "market.none_week": {
        "en": "No listings stand in week {week}.",
        "zh": "{week} 周没有在挂的信息。",
    },
    "cmd.explain": {
        "en": "the parties behind a pulse: /explain H100 rent [2026-W43] (admins)",
        "zh": "行情明细：每家的帖子与价格 (管理员)",
    },
    "error.bad_week": {
        "en": "“{value}” is not an ISO week; write it like {example}.",
        "zh": "「{value}」不是 ISO 周，请写成 {example} 这样。",
    },
    "explain.title": {
        "en": "{gpu} {deal} · week {week} ({start} – {end}){scope}",
        "zh": "{gpu} {deal} · {week} 周（{start} – {end}）{scope}",
    },
    "explain.parties": {
        "en": "{sellers} sellers · {buyers} buyers → {reading}",
        "zh": "卖方 {sellers} 家 · 买方 {buyers} 家 → {reading}",
    },
    "explain.asks": {
        "en": "Asks over {n} priced sellers: median {median} (p25 {p25}, p75 {p75}),"
        " best {best}{wow}",
        "zh": "卖价（{n} 家报价）：中位 {median}（p25 {p25}，p75 {p75}），最低 {best}{wow}",
    },
    "explain.bids": {
        "en": "Bids over {n} priced buyers: median {median} (p25 {p25}, p75 {p75}), best {best}",
        "zh": "买价（{n} 家报价）：中位 {median}（p25 {p25}，p75 {p75}），最高 {best}",
    },
    "explain.wow": {"en": ", {change} on the week before", "zh": "，较上周 {change}"},
    "explain.raw": {
        "en": "Posts in the week: sell {sell_posts} by {sell_posters} posters,"
        " buy {buy_posts} by {buy_posters} posters",
        "zh": "本周帖子：卖 {sell_posts} 条（{sell_posters} 人），"
        "买 {buy_posts} 条（{buy_posters} 人）",
    },
    "explain.sellers": {"en": "Sellers:", "zh": "卖方："},
    "explain.buyers": {"en": "Buyers:", "zh": "买方："},
    "explain.none": {"en": "  (none)", "zh": "  （无）"},
    "explain.listing": {
        "en": "{n}. {name} · {qty} · {place} · {price}{counted}",
        "zh": "{n}. {name} · {qty} · {place} · {price}{counted}",
    },
    "explain.price_week": {"en": "{price} this week", "zh": "本周 {price}"},
    "explain.no_price": {"en": "no price stated", "zh": "未报价"},
    "explain.not_counted": {
        "en": " (its party's later listing sets its price)",
        "zh": "（该方以其较新的信息计价）",
    },
    "explain.stands": {
        "en": "   stands {start} – {end}: {ending}",
        "zh": "   在挂 {start} – {end}：{ending}",
    },
    "explain.closed": {
        "en": "closed by {name} in {chat} at {when}: “{text}”",
        "zh": "{when} 由 {name} 在 {chat} 撤下：「{text}」",
    },
    "explain.closed_command": {
        "en": "closed by {command} at {when}",
        "zh": "{when} 以 {command} 撤下",
    },
    "explain.lapsed": {
        "en": "lapsed {days} days after its last post",
        "zh": "最后一帖 {days} 天后到期",
    },
    "explain.standing": {
        "en": "still standing ({days} days after its last post unless posted again)",
        "zh": "仍在挂（最后一帖 {days} 天后到期，除非再次发帖）",
    },
    "explain.advert": {
        "en": "   {when} · {chat} · {name} · {role}: “{text}”",
        "zh": "   {when} · {chat} · {name} · {role}：「{text}」",
    },
    "explain.more_posts": {
        "en": "   …{n} more posts in between",
        "zh": "   ……中间还有 {n} 条帖子",
    },
    "explain.later": {
        "en": "   …and {n} later posts",
        "zh": "   ……之后还有 {n} 条帖子",
    },
    "explain.more": {
        "en": "…and {n} more listings: gpudesk explain {gpu} {deal} --week {week} lists them all",
        "zh": "……另有 {n} 条信息，完整列表：gpudesk explain {gpu} {deal} --week {week}",
    },
    "role.original": {"en": "original", "zh": "首发"},
    "role.repost": {"en": "repost", "zh": "重发"},
    "role.cross_post": {"en": "cross-post", "zh": "跨群转发"},
    "role.price_change": {"en": "price change", "zh": "改价"},
    "role.broker_repost": {"en": "broker repost", "zh": "中介转发"},
    # -- watches (issue 10) -----------------------------------------------------------------
    "cmd.watch": {
        "en": "tell me privately of offers that fit: /watch H100 rent <= 1.6 USD/GPU-hr",
        "zh": "盯盘提醒：盯 H100 月租 6w/台以下 北京",
    },
    "cmd.watches": {"en": "my watches and what they found", "zh": "我的盯盘及命中"},
    "cmd.unwatch": {"en": "stop a watch: /unwatch 3", "zh": "取消盯盘：取消盯盘 3"},
    "watch.example": {
        "en": "/watch H100 rent <= 1.6 USD/GPU-hr in Beijing >= 32 GPUs",
        "zh": "盯 H100 月租 6w/台以下 北京",
    },
    "watch.example.sell": {
        "en": "/watch sell H100 rent >= 2.2 USD/GPU-hr",
        "zh": "盯 出租 H100 月租 7w/台以上",
    },
    "watch.usage": {
        "en": "Tell me what to watch for, e.g. {example}. Add “digest hourly” or “digest daily”"
        " for one message an hour or a day, “here” to watch this group only.",
        "zh": "请写明要盯的内容，例如：{example}。加「每小时汇总」或「每日汇总」改为定时汇总，"
        "加「本群」只盯本群。",
    },
    "watch.set": {
        "en": "Watch #{id} set: {watch}. I will tell you privately until {until}.",
        "zh": "已设置盯盘 #{id}：{watch}。有效至 {until}，命中时私信通知你。",
    },
    "watch.dm_hint": {
        "en": "If you have not yet, open a private chat with me and press Start; until then I"
        " mention you here.",
        "zh": "如果还没私聊过我，请先私聊我并点「开始」；在此之前我会在本群@你。",
    },
    "watch.renewed": {
        "en": "Watch #{id} renewed until {until}.",
        "zh": "盯盘 #{id} 已续期至 {until}。",
    },
    "watch.looks_for": {"en": "{side} of {model} {deal}", "zh": "{model} {deal}{side}"},
    "watch.side.sell": {"en": "sellers", "zh": "卖方"},
    "watch.side.buy": {"en": "buyers", "zh": "买方"},
    "watch.deal.any": {"en": "rent or sale", "zh": "租售"},
    "watch.at_most": {"en": "≤ {price}", "zh": "≤ {price}"},
    "watch.at_least": {"en": "≥ {price}", "zh": "≥ {price}"},
    "watch.min_gpus": {"en": "≥ {n} GPUs", "zh": "≥ {n} 卡"},
    "watch.scope": {"en": "only in {chat}", "zh": "仅限 {chat}"},
    "watch.delivery.hourly": {"en": "hourly digest", "zh": "每小时汇总"},
    "watch.delivery.daily": {"en": "daily digest", "zh": "每日汇总"},
    "watch.alert.title": {
        "en": "Your watch #{id} ({watch}) found:",
        "zh": "你的盯盘 #{id}（{watch}）有新信息：",
    },
    "watch.alert.unit": {"en": " (≈ {price})", "zh": "（约 {price}）"},
    "watch.alert.where": {
        "en": "{name} in {chat}, {ago} · {ref}",
        "zh": "{name}（{chat}，{ago}）· {ref}",
    },
    "watch.alert.footer": {
        "en": "/watches lists your watches; /unwatch {id} stops this one.",
        "zh": "发送 我的盯盘 查看全部；发送 取消盯盘 {id} 取消此盯盘。",
    },
    "watch.ref": {"en": "post {id} in {chat}", "zh": "{chat} 第 {id} 条消息"},
    "watch.digest.title": {
        "en": "Watch digest since {since} ({n} new):",
        "zh": "盯盘汇总：自 {since} 起 {n} 条新信息：",
    },
    "watch.overflow.title": {
        "en": "…and {n} more offers for your watches since {since}:",
        "zh": "……自 {since} 起你的盯盘还有 {n} 条新信息：",
    },
    "watch.digest.line": {
        "en": "#{id}: {offer} · {name} in {chat} · {ref}",
        "zh": "#{id}：{offer} · {name}（{chat}）· {ref}",
    },
    "watch.digest.more": {
        "en": "…and {n} more.",
        "zh": "……另有 {n} 条。",
    },
    "watch.reminder": {
        "en": "Your watch #{id} ({watch}) ends {until}. Send /watch renew {id} to keep it"
        " {days} more days.",
        "zh": "你的盯盘 #{id}（{watch}）将于 {until} 到期。发送「盯 续期 {id}」可再续 {days} 天。",
    },
    "watches.none": {
        "en": "You have no watches. Set one, e.g. {example}",
        "zh": "你还没有盯盘。例如：{example}",
    },
    "watches.title": {"en": "Your watches ({n} of {most}):", "zh": "你的盯盘（{n}/{most}）："},
    "watches.line": {
        "en": "#{id} {watch} · hits: {hits} · until {until}",
        "zh": "#{id} {watch} · 命中 {hits} 次 · 有效至 {until}",
    },
    "watches.last": {
        "en": "   latest: {summary} · {name} in {chat}, {ago}",
        "zh": "   最近：{summary} · {name}（{chat}，{ago}）",
    },
    "watches.footer": {
        "en": "/unwatch ID stops one; /watch renew ID keeps one longer.",
        "zh": "发送「取消盯盘 编号」取消；发送「盯 续期 编号」续期。",
    },
    "unwatch.done": {"en": "Watch #{id} stopped.", "zh": "盯盘 #{id} 已取消。"},
    "unwatch.all": {
        "en": "All your watches stopped ({n}).",
        "zh": "已取消你的全部盯盘（{n} 个）。",
    },
    "watch.error.no_model": {
        "en": "Which GPU should I watch for? For example: {example}",
        "zh": "请写明要盯的型号，例如：{example}",
    },
    "watch.error.two_models": {
        "en": "One GPU per watch, please (I read {gpus}).",
        "zh": "每个盯盘只能盯一个型号（读到了 {gpus}）。",
    },
    "watch.error.no_deal": {
        "en": "To rent or to buy outright? A price limit needs one, e.g. {example}",
        "zh": "是租赁还是买卖？设价格上限需写明，例如：{example}",
    },
    "watch.error.no_price": {
        "en": "I could not read a price after “{word}”. For example: {example}",
        "zh": "「{word}」后面没有读到价格，例如：{example}",
    },
    "watch.error.side_conflict": {
        "en": "A ceiling (<=) watches sellers and a floor (>=) buyers; to sell, e.g. {example}",
        "zh": "「以下」是盯卖方，「以上」是盯买方；如果你是出租或出售，例如：{example}",
    },
    "watch.error.max_count": {
        "en": "I can watch for at least so many GPUs, e.g. “>= 32 GPUs”, not at most.",
        "zh": "数量只能设下限，例如「32卡以上」。",
    },
    "watch.error.two_limits": {
        "en": "One price limit per watch, please.",
        "zh": "每个盯盘只能设一个价格条件。",
    },
    "watch.error.bad_unit": {
        "en": "That price unit does not fit the deal: rent is per hour or month, a sale per GPU"
        " or server.",
        "zh": "价格单位与交易类型不符：租赁按小时或按月，买卖按卡或按台。",
    },
    "watch.error.here_private": {
        "en": "“here” only works in a group: set the watch there, or leave it out.",
        "zh": "「本群」只能在群里使用：请在群里设置，或去掉「本群」。",
    },
    "watch.error.unreadable": {
        "en": "I could not read that watch. For example: {example}",
        "zh": "无法读取这个盯盘，例如：{example}",
    },
    "watch.error.too_long": {
        "en": "That is too long for a watch (at most {limit} characters).",
        "zh": "盯盘内容太长（最多 {limit} 个字符）。",
    },
    "watch.error.too_many": {
        "en": "You already have {most} watches, the most a member may have. /unwatch one first.",
        "zh": "你已有 {most} 个盯盘，已达上限。请先取消一个。",
    },
    "watch.error.need_id": {
        "en": "Which watch? Give its number, e.g. {example}. /watches lists yours.",
        "zh": "请给出盯盘编号，例如 {example}。发送 我的盯盘 查看。",
    },
    "watch.error.no_watch": {
        "en": "You have no running watch #{id}. /watches lists yours.",
        "zh": "你没有编号为 #{id} 的盯盘。发送 我的盯盘 查看。",
    },
}


def say(lang: str, key: str, **values: object) -> str:
    """The text for `key` in `lang` (English when the group's language is unknown)."""
    entry = TEXTS[key]
    template = entry.get(lang, entry["en"])  # type: ignore[call-overload]
    return template.format(**values) if values else template
