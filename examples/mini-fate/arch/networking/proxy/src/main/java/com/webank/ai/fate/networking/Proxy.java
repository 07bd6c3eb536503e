package com.webank.ai.fate.networking;

import com.webank.ai.fate.core.Banner;

public final class Proxy {
    public static void main(String[] args) {
        System.out.println(Banner.banner("proxy", 9370));
    }
}
